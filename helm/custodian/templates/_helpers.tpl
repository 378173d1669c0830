{{/* Chart name, overridable. */}}
{{- define "custodian.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; component names are "<fullname>-<service>". */}}
{{- define "custodian.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else if contains (include "custodian.name" .) .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "custodian.name" .) | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Name of one service's objects. Argument: dict "root" $ "name" <service>. */}}
{{- define "custodian.componentName" -}}
{{- printf "%s-%s" (include "custodian.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of one service. Argument: dict "root" $ "name" <service>. */}}
{{- define "custodian.selectorLabels" -}}
app.kubernetes.io/name: {{ include "custodian.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* All labels of one service. Argument: dict "root" $ "name" <service>. */}}
{{- define "custodian.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "custodian.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: custodian
{{- end }}

{{/* The service account the pods run as. */}}
{{- define "custodian.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "custodian.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}


{{/* Labels shared by every object of the release (not a single component). */}}
{{- define "custodian.releaseLabels" -}}
app.kubernetes.io/name: {{ include "custodian.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Image reference: by digest when one is given (what was scanned is what runs), else by tag. */}}
{{- define "custodian.imageRef" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Non-secret environment of every service and migration container. */}}
{{- define "custodian.configMapName" -}}
{{- printf "%s-config" (include "custodian.fullname" .) }}
{{- end }}

{{/* The database URL from its Secret (the only place credentials live). */}}
{{- define "custodian.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.existingSecret is required" .Values.database.existingSecret }}
      key: {{ .Values.database.urlKey }}
{{- end }}

{{/* One egress destination (selectors and/or CIDRs). Argument: the database or nats values. */}}
{{- define "custodian.egressPeers" -}}
{{- if or .podSelector .namespaceSelector }}
- {{- with .namespaceSelector }}
  namespaceSelector:
    matchLabels:
      {{- toYaml . | nindent 6 }}
  {{- end }}
  {{- with .podSelector }}
  podSelector:
    matchLabels:
      {{- toYaml . | nindent 6 }}
  {{- end }}
{{- end }}
{{- range .cidrs }}
- ipBlock:
    cidr: {{ . }}
{{- end }}
{{- end }}
