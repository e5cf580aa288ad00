{{- define "retrain-operator.labels" -}}
app.kubernetes.io/name: retrain-operator
{{- end -}}

{{/* A shard's Deployment (and peering) name: (list index count). */}}
{{- define "retrain-operator.shardName" -}}
{{- $index := index . 0 }}{{ $count := index . 1 -}}
retrain-operator{{ if gt $count 1 }}-shard-{{ $index }}{{ end }}
{{- end -}}

{{/* A shard's labels: (list root index count); the shard label only when there are several, so that
each Deployment selects its own pods while the metrics Service selects them all. */}}
{{- define "retrain-operator.shardLabels" -}}
{{- $root := index . 0 }}{{ $index := index . 1 }}{{ $count := index . 2 -}}
{{ include "retrain-operator.labels" $root }}
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
