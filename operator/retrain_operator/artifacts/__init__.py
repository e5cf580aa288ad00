"""The artifact layer shared by the trainer and the operator: S3 layout, manifests, data objects."""

from .data import DataObject, count_rows, list_data_objects, read_table
from .errors import ChecksumMismatchError, DataError, StorageError, VersionExistsError
from .layout import ERROR_FILE, MANIFEST_FILE, METRICS_FILE, MODEL_FILE, version_prefix
from .store import ArtifactStore
from .uris import parse_s3_uri

__all__ = [
    "ERROR_FILE", "MANIFEST_FILE", "METRICS_FILE", "MODEL_FILE", "ArtifactStore", "ChecksumMismatchError",
    "DataError", "DataObject", "StorageError", "VersionExistsError", "count_rows", "list_data_objects",
    "parse_s3_uri", "read_table", "version_prefix",
]
