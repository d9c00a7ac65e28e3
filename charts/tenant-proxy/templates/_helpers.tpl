{{/* Chart name, overridable. */}}
{{- define "tenant-proxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, or just the release when it already contains the chart's name. */}}
{{- define "tenant-proxy.fullname" -}}
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

{{- define "tenant-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tenant-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tenant-proxy.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tenant-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tenant-proxy.serviceAccountName" -}}
{{- default (include "tenant-proxy.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/* The Secret holding tls.crt and tls.key, whichever mode created it. */}}
{{- define "tenant-proxy.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" }}
{{- required "tls.existingSecret is required when tls.mode=secret" .Values.tls.existingSecret }}
{{- else }}
{{- printf "%s-tls" (include "tenant-proxy.fullname" .) }}
{{- end }}
{{- end }}

{{/* DNS names of the Service, which every generated certificate must carry. */}}
{{- define "tenant-proxy.dnsNames" -}}
{{- $svc := include "tenant-proxy.fullname" . }}
{{- $names := list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) }}
{{- concat $names .Values.tls.extraDNSNames | uniq | toJson }}
{{- end }}

{{/* Metrics leave loopback only when something scrapes them. */}}
{{- define "tenant-proxy.metricsExposed" -}}
{{- if or .Values.metrics.exposed .Values.serviceMonitor.enabled }}true{{ end }}
{{- end }}

{{- define "tenant-proxy.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* RBAC subjects: the proxy's ServiceAccount and rbac.extraServiceAccounts (e.g. a dashboard with the sidecar). */}}
{{- define "tenant-proxy.subjects" -}}
- kind: ServiceAccount
  name: {{ include "tenant-proxy.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- range .Values.rbac.extraServiceAccounts }}
- kind: ServiceAccount
  name: {{ .name }}
  namespace: {{ default $.Release.Namespace .namespace }}
{{- end }}
{{- end }}
