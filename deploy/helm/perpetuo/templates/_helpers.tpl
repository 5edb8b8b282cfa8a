{{/* Names, labels and the environment shared by the gateway and the migration Job. */}}

{{- define "perpetuo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "perpetuo.fullname" -}}
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

{{- define "perpetuo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "perpetuo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "perpetuo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "perpetuo.labels" -}}
helm.sh/chart: {{ include "perpetuo.chart" . }}
{{ include "perpetuo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "perpetuo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "perpetuo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "perpetuo.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The fewest replicas the chart runs: what the PDB and the Redis check reason about. */}}
{{- define "perpetuo.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{/* Refuse configurations that would run but misbehave. */}}
{{- define "perpetuo.validate" -}}
{{- $_ := required "secrets.databaseUrl.name is required: replicas share a PostgreSQL database (SQLite is for a single local instance)" .Values.secrets.databaseUrl.name }}
{{- $_ := required "secrets.masterKey.name is required: otherwise every pod generates its own master key" .Values.secrets.masterKey.name }}
{{- $_ := required "secrets.secretKey.name is required: every pod must hash API keys and sign sessions with the same secret" .Values.secrets.secretKey.name }}
{{- $several := or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) (gt (int .Values.workers) 1) }}
{{- if and $several (not .Values.secrets.redisUrl.name) }}
{{- fail "secrets.redisUrl.name is required with several replicas or workers: rate limits, budgets and cache invalidation are shared through Redis" }}
{{- end }}
{{- end }}

{{/* One env entry read from an existing Secret: (list "ENV_NAME" .Values.secrets.x). */}}
{{- define "perpetuo.secretEnv" -}}
{{- $env := index . 0 }}
{{- $ref := index . 1 }}
{{- if $ref.name -}}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name | quote }}
      key: {{ $ref.key | quote }}
{{- end }}
{{- end }}

{{/* What both the gateway and the migration Job need to open the store. */}}
{{- define "perpetuo.storeEnv" -}}
- name: PERPETUO_DATA_DIR
  value: /var/lib/perpetuo
{{- with include "perpetuo.secretEnv" (list "PERPETUO_DATABASE_URL" .Values.secrets.databaseUrl) }}{{ . | nindent 0 }}{{ end }}
{{- with include "perpetuo.secretEnv" (list "PERPETUO_SECRET_KEY" .Values.secrets.secretKey) }}{{ . | nindent 0 }}{{ end }}
{{- with include "perpetuo.secretEnv" (list "PERPETUO_ENCRYPTION_KEYS" .Values.secrets.encryptionKeys) }}{{ . | nindent 0 }}{{ end }}
- name: PERPETUO_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end }}
