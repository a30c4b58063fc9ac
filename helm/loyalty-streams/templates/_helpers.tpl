{{/* Names ------------------------------------------------------------------------------ */}}

{{- define "loyalty-streams.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "loyalty-streams.fullname" -}}
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
{{- end }}

{{/* The headless service: gives each worker pod a stable DNS name. */}}
{{- define "loyalty-streams.headlessName" -}}
{{- printf "%s-headless" (include "loyalty-streams.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "loyalty-streams.secretName" -}}
{{- default (include "loyalty-streams.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "loyalty-streams.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "loyalty-streams.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "loyalty-streams.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Labels ----------------------------------------------------------------------------- */}}

{{- define "loyalty-streams.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "loyalty-streams.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: loyalty-streams
{{- end }}

{{/* Selector labels of one component (worker, pms-webhook, redis-mirror, topics). */}}
{{- define "loyalty-streams.selectorLabels" -}}
app.kubernetes.io/name: {{ include "loyalty-streams.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Settings --------------------------------------------------------------------------- */}}

{{- define "loyalty-streams.saslEnabled" -}}
{{- if and .Values.kafka.sasl.mechanism (has .Values.kafka.securityProtocol (list "SASL_PLAINTEXT" "SASL_SSL")) }}true{{ end }}
{{- end }}

{{/* envFrom of every loyalty-streams container: the shared settings and secrets. */}}
{{- define "loyalty-streams.envFrom" -}}
- configMapRef:
    name: {{ include "loyalty-streams.fullname" . }}
- secretRef:
    name: {{ include "loyalty-streams.secretName" . }}
{{- end }}

{{/* Checks that fail rendering with a message, before anything reaches the cluster. */}}
{{- define "loyalty-streams.validate" -}}
{{- $partitions := int .Values.kafka.partitions }}
{{- if lt $partitions 1 }}
{{- fail "kafka.partitions must be the partition count of casino.player-events (at least 1)" }}
{{- end }}
{{- if gt (int .Values.replicaCount) $partitions }}
{{- fail (printf "replicaCount (%d) must not exceed kafka.partitions (%d): a worker beyond the partitions of casino.player-events would sit idle" (int .Values.replicaCount) $partitions) }}
{{- end }}
{{- if .Values.autoscaling.enabled }}
{{- if not (has .Values.autoscaling.mode (list "keda" "hpa")) }}
{{- fail (printf "autoscaling.mode must be keda or hpa, not %q" .Values.autoscaling.mode) }}
{{- end }}
{{- if gt (int .Values.autoscaling.maxReplicas) $partitions }}
{{- fail (printf "autoscaling.maxReplicas (%d) must not exceed kafka.partitions (%d), the partitions of casino.player-events" (int .Values.autoscaling.maxReplicas) $partitions) }}
{{- end }}
{{- if lt (int .Values.autoscaling.minReplicas) 1 }}
{{- fail "autoscaling.minReplicas must be at least 1" }}
{{- end }}
{{- if gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas) }}
{{- fail (printf "autoscaling.minReplicas (%d) must not exceed autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- end }}
{{- if not (has .Values.kafka.securityProtocol (list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL")) }}
{{- fail (printf "kafka.securityProtocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, not %q" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if and .Values.kafka.sasl.mechanism (not (has .Values.kafka.sasl.mechanism (list "PLAIN" "SCRAM-SHA-256" "SCRAM-SHA-512"))) }}
{{- fail (printf "kafka.sasl.mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, not %q" .Values.kafka.sasl.mechanism) }}
{{- end }}
{{- if and .Values.pmsWebhook.enabled (not .Values.pmsWebhook.url) }}
{{- fail "pmsWebhook.url is required when pmsWebhook.enabled (LOYALTY_PMS_WEBHOOK_URL)" }}
{{- end }}
{{- if and .Values.redisMirror.enabled (not (or .Values.redisMirror.url .Values.redisMirror.sentinels)) }}
{{- fail "redisMirror.url or redisMirror.sentinels is required when redisMirror.enabled" }}
{{- end }}
{{- /* The chart's own Secret: keys the operator gives, never a default (the processes refuse
  one shorter than 32 bytes too, HS256 and HMAC-SHA256 want 256 bits). Key, and whether needed. */}}
{{- if not .Values.secrets.existingSecret }}
{{- $secrets := .Values.secrets }}
{{- range list (list "apiTokenSecret" true) (list "pmsWebhookSecret" .Values.pmsWebhook.enabled) (list "pmsWebhookSecretPrevious" false) }}
{{- $key := index . 0 }}
{{- $value := get $secrets $key | default "" }}
{{- if and (index . 1) (not $value) }}
{{- fail (printf "secrets.%s is required (or secrets.existingSecret): a random secret of at least 32 bytes, e.g. openssl rand -base64 32" $key) }}
{{- end }}
{{- if and $value (lt (len $value) 32) }}
{{- fail (printf "secrets.%s is %d bytes long: it must be a random secret of at least 32 bytes" $key (len $value)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* HPA scaling behaviour, shared by the HPA and KEDA's generated HPA. */}}
{{- define "loyalty-streams.hpaBehavior" -}}
scaleDown:
  stabilizationWindowSeconds: {{ .Values.autoscaling.behavior.scaleDownStabilizationSeconds }}
  policies:
    - type: Pods
      value: {{ .Values.autoscaling.behavior.scaleDownPods }}
      periodSeconds: {{ .Values.autoscaling.behavior.scaleDownPeriodSeconds }}
scaleUp:
  policies:
    - type: Pods
      value: {{ .Values.autoscaling.behavior.scaleUpPods }}
      periodSeconds: {{ .Values.autoscaling.behavior.scaleUpPeriodSeconds }}
{{- end }}
