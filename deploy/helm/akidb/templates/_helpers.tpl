{{- define "akidb.name" -}}{{ .Release.Name }}-akidb{{- end -}}
{{- define "akidb.labels" -}}
app.kubernetes.io/name: akidb
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
{{- define "akidb.selector" -}}
app.kubernetes.io/name: akidb
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "akidb.secret" -}}
{{- if .Values.apiKeys.existingSecret }}{{ .Values.apiKeys.existingSecret }}{{ else }}{{ include "akidb.name" . }}-keys{{ end -}}
{{- end -}}
