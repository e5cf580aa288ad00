"""What a run leaves in S3 and how both sides read it: layout, manifests, checksums, signatures."""
