{{/* The image: repository is required (no example registry ships in this chart). */}}
{{- define "voice-orchestrator.image" -}}
{{- $repo := required "image.repository is required (your registry's repository)" .Values.image.repository -}}
{{- if .Values.image.digest -}}
{{ $repo }}@{{ .Values.image.digest }}
{{- else -}}
{{ $repo }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* KEDA's Kafka triggers must reach the same brokers as the roles. */}}
{{- define "voice-orchestrator.bootstrap" -}}
{{ required "settings.KAFKA_BOOTSTRAP_SERVERS is required" .Values.settings.KAFKA_BOOTSTRAP_SERVERS }}
{{- end -}}
