{{/*
Chart name, truncated to the 63 characters of a label value.
*/}}
{{- define "dittofs.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: the release name, suffixed with the chart name unless
the release name already contains it.
*/}}
{{- define "dittofs.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Chart label value: name-version.
*/}}
{{- define "dittofs.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select the operator pod (must never change between upgrades).
*/}}
{{- define "dittofs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dittofs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
Labels of every object of the chart.
*/}}
{{- define "dittofs.labels" -}}
helm.sh/chart: {{ include "dittofs.chart" . }}
{{ include "dittofs.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: dittofs
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Name of the operator's ServiceAccount.
*/}}
{{- define "dittofs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dittofs.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Operator image reference.
*/}}
{{- define "dittofs.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
Default data-plane image reference (--default-image).
*/}}
{{- define "dittofs.dataplaneImage" -}}
{{- printf "%s:%s" .Values.dataplane.image.repository (.Values.dataplane.image.tag | default .Chart.AppVersion) }}
{{- end }}
