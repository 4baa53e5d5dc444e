{{/*
Names and labels shared by every template of the chart.
*/}}

{{/* The chart's short name (nameOverride wins). */}}
{{- define "headroom.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: fullnameOverride, else the release name, with the chart
name appended unless the release name already contains it (helm install headroom ... gives
"headroom", not "headroom-headroom").
*/}}
{{- define "headroom.fullname" -}}
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

{{- define "headroom.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "headroom.labels" -}}
helm.sh/chart: {{ include "headroom.chart" . }}
app.kubernetes.io/name: {{ include "headroom.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: headroom
{{- end }}

{{/* Selector of the operator's pods (never changes across upgrades). */}}
{{- define "headroom.operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "headroom.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "headroom.operator.labels" -}}
{{ include "headroom.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "headroom.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-operator" (include "headroom.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Lease the operator replicas elect their leader with. */}}
{{- define "headroom.leaseName" -}}
{{- default (printf "%s-operator" (include "headroom.fullname" .)) .Values.operator.leaderElection.leaseName }}
{{- end }}

{{/* The operator's image reference (tag defaults to the chart's appVersion). */}}
{{- define "headroom.image" -}}
{{- $img := .Values.operator.image }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) }}
{{- end }}
{{- end }}

{{/*
The environment variable that carries one secret of an alert sink: (list SINK FIELD).
*/}}
{{- define "headroom.alerts.envName" -}}
{{- $sink := index . 0 | upper | replace "-" "_" | replace "." "_" -}}
{{- $field := index . 1 | trimSuffix "From" | snakecase | upper -}}
HEADROOM_ALERT_{{ $sink }}_{{ $field }}
{{- end }}

{{/*
The operator's env entries for the alerts config and every sink secret (secretKeyRef).
*/}}
{{- define "headroom.alerts.enabled" -}}
{{- if or .Values.alerts.sinks .Values.alerts.inbound.enabled }}true{{ end }}
{{- end }}

{{- define "headroom.alerts.env" -}}
{{- if include "headroom.alerts.enabled" . }}
- name: HEADROOM_ALERTS_CONFIG
  value: /etc/headroom/alerts.yaml
{{- range $name, $sink := .Values.alerts.sinks }}
{{- range $field := list "urlFrom" "secretFrom" "routingKeyFrom" "tokenFrom" }}
{{- with index $sink $field }}
- name: {{ include "headroom.alerts.envName" (list $name $field) }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName | quote }}
      key: {{ .key | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- if .Values.alerts.inbound.enabled }}
{{- range $field := list "tokenFrom" "hmacSecretFrom" }}
{{- with index $.Values.alerts.inbound $field }}
- name: {{ include "headroom.alerts.envName" (list "inbound" $field) }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName | quote }}
      key: {{ .key | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
