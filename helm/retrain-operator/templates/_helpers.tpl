{{/* Names and labels as `helm create` makes them (name, fullname, chart, labels, selectorLabels), so
that two releases in one cluster never share an object: see the chart's README, "Two releases". */}}

{{/* The chart's name, or nameOverride. */}}
{{- define "retrain-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* The release's objects' name: fullnameOverride; else the release name when it contains the chart's
name (release `retrain-operator` gives `retrain-operator`); else `<release>-<name>`. 63 characters at most. */}}
{{- define "retrain-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end -}}

{{/* `<chart>-<version>`, for the helm.sh/chart label. */}}
{{- define "retrain-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* A name of parts joined by "-" (list base suffix...), 63 characters at most. A longer one keeps its
suffixes whole and shortens the base, adding 6 hex digits of the whole name's sha256: two names that differ
only past the cut (shard-1 and shard-10, two namespaces) stay different. */}}
{{- define "retrain-operator.join" -}}
{{- $whole := join "-" . }}
{{- if le (len $whole) 63 }}
{{- $whole }}
{{- else }}
{{- $hash := sha256sum $whole | trunc 6 }}
{{- $suffix := join "-" (rest .) }}
{{- $room := sub 63 (add (len $suffix) 8) | int }}
{{- if gt $room 0 }}
{{- printf "%s-%s-%s" (first . | trunc $room | trimSuffix "-") $hash $suffix }}
{{- else }}
{{- printf "%s-%s" ($whole | trunc 56 | trimSuffix "-") $hash }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The name of an object outside the release's namespace (cluster-scoped, or in a watched namespace):
`<fullname>-<release namespace>[-<suffix>]` (root or list root suffix), so that two releases of the same name
in two namespaces do not share it. */}}
{{- define "retrain-operator.globalName" -}}
{{- $root := . }}{{ $suffix := list }}
{{- if kindIs "slice" . }}{{ $root = first . }}{{ $suffix = rest . }}{{ end }}
{{- include "retrain-operator.join" (concat (list (include "retrain-operator.fullname" $root) $root.Release.Namespace) $suffix) }}
{{- end -}}

{{/* The name of an object in a namespace a value may choose (list root namespace [suffix]): in the release's
namespace `<fullname>[-<suffix>]`, elsewhere the globalName. */}}
{{- define "retrain-operator.nameIn" -}}
{{- $root := index . 0 }}{{ $namespace := index . 1 }}{{ $suffix := slice . 2 -}}
{{- if eq $namespace $root.Release.Namespace }}
{{- include "retrain-operator.join" (concat (list (include "retrain-operator.fullname" $root)) $suffix) }}
{{- else }}
{{- include "retrain-operator.globalName" (concat (list $root) $suffix) }}
{{- end }}
{{- end -}}

{{/* The labels a selector uses: stable across upgrades (a Deployment's selector cannot change). */}}
{{- define "retrain-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "retrain-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The labels of every object (root, or list root component [extra]): selectorLabels, the version, the chart,
who manages it, the component; then `extra` (an object's own labels), then commonLabels. One map, so a key is
never written twice; the schema keeps the standard keys out of the others. */}}
{{- define "retrain-operator.labels" -}}
{{- $root := . }}{{ $component := "operator" }}{{ $extra := dict }}
{{- if kindIs "slice" . }}
{{- $root = index . 0 }}{{ $component = index . 1 }}
{{- if gt (len .) 2 }}{{ $extra = index . 2 | default dict }}{{ end }}
{{- end }}
{{- $labels := include "retrain-operator.selectorLabels" $root | fromYaml }}
{{- $_ := set $labels "helm.sh/chart" (include "retrain-operator.chart" $root) }}
{{- $_ = set $labels "app.kubernetes.io/version" ($root.Chart.AppVersion | toString) }}
{{- $_ = set $labels "app.kubernetes.io/managed-by" $root.Release.Service }}
{{- $_ = set $labels "app.kubernetes.io/part-of" "retrain-operator" }}
{{- $_ = set $labels "app.kubernetes.io/component" $component }}
{{- toYaml (merge $labels $extra ($root.Values.commonLabels | default dict)) }}
{{- end -}}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "retrain-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "retrain-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end -}}

{{/* A shard's Deployment name (list root index count): `<fullname>`, or `<fullname>-shard-<i>` of several. */}}
{{- define "retrain-operator.shardName" -}}
{{- $root := index . 0 }}{{ $index := index . 1 }}{{ $count := index . 2 -}}
{{- if gt $count 1 }}
{{- include "retrain-operator.join" (list (include "retrain-operator.fullname" $root) (printf "shard-%d" $index)) }}
{{- else }}
{{- include "retrain-operator.fullname" $root }}
{{- end }}
{{- end -}}

{{/* A shard's kopf peering name (list root index count): the globalName, `-shard-<i>` of several; the
ClusterKopfPeering (or a KopfPeering in each watched namespace) and the shard's --peering. */}}
{{- define "retrain-operator.peeringName" -}}
{{- $root := index . 0 }}{{ $index := index . 1 }}{{ $count := index . 2 -}}
{{- if gt $count 1 }}
{{- include "retrain-operator.globalName" (list $root (printf "shard-%d" $index)) }}
{{- else }}
{{- include "retrain-operator.globalName" $root }}
{{- end }}
{{- end -}}

{{/* A shard's selector (list root index count): selectorLabels, and the shard label only when there are
several, so that each Deployment selects its own pod while the metrics Service and the
PodDisruptionBudget select them all. */}}
{{- define "retrain-operator.shardSelectorLabels" -}}
{{- $root := index . 0 }}{{ $index := index . 1 }}{{ $count := index . 2 -}}
{{ include "retrain-operator.selectorLabels" $root }}
{{- if gt $count 1 }}
retrain.mlops.dev/shard: {{ $index | quote }}
{{- end }}
{{- end -}}

{{- define "retrain-operator.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "retrain-operator.trainerImage" -}}
{{ .Values.trainerImage.repository }}:{{ .Values.trainerImage.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The rules the operator needs on namespaced resources (manifests/operator/rbac.yaml, minus the CRD rule). */}}
{{- define "retrain-operator.rules" -}}
# The policies: watched, read, annotated/finalized by kopf, and their status written.
- apiGroups: [retrain.mlops.dev]
  resources: [retrainpolicies]
  verbs: [get, list, watch, patch]
- apiGroups: [retrain.mlops.dev]
  resources: [retrainpolicies/status]
  verbs: [patch]
# Trainer and drift-check Jobs.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch, create]
# The Secrets a policy names (S3 credentials, signing keys; Jobs get them by reference): watched, and
# only those some policy names are kept in memory; one named before it was seen is read once.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
# Events on the policies; with spec.notify they are the notifications' outbox: those still owed are
# listed by label (after a restart), and each is relabelled once delivered (docs/notifications.md).
- apiGroups: [""]
  resources: [events]
  verbs: [create, list, patch]
# Model serving: the stable and canary Deployments and their Services.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch]
# Canary analysis: the model servers' /metrics, through the API server's pod proxy.
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [""]
  resources: [pods/proxy]
  verbs: [get]
# Traffic weights on the routes users name (only our backends' weights and our mirror filter);
# watched like the Secrets.
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, patch]
- apiGroups: [networking.istio.io]
  resources: [virtualservices]
  verbs: [get, list, watch, patch]
{{- end -}}

{{/* kopf's peering objects (sharding.peering): it reads, watches and patches their status. */}}
{{- define "retrain-operator.peeringRule" -}}
- apiGroups: [kopf.dev]
  resources: [{{ . }}]
  verbs: [get, list, watch, patch]
{{- end -}}

{{- define "retrain-operator.crdRule" -}}
# kopf follows CRDs to know when the resources it serves appear or change.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end -}}

{{/* An alert's labels: (list prometheusRule alert): its severity, then prometheusRule.alertLabels. */}}
{{- define "retrain-operator.alertLabels" -}}
{{- $rule := index . 0 }}{{ $alert := index . 1 -}}
{{ toYaml (merge (dict "severity" $alert.severity) ($rule.alertLabels | default dict)) }}
{{- end -}}
