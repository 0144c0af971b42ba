{{/* Names and labels shared by every template. */}}

{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's prefix: <release>-<chart>, or the release name when it already holds the chart's. */}}
{{- define "sluice.fullname" -}}
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

{{- define "sluice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ include "sluice.chart" . }}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluice
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "ingest"). */}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "sluice.componentLabels" -}}
{{ include "sluice.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "sluice.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "sluice.serviceAccountName" -}}
{{- printf "%s-%s" (include "sluice.fullname" .ctx) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.natsURL" -}}
{{- if .Values.nats.embedded.enabled }}
{{- printf "nats://%s-nats.%s.svc:4222" (include "sluice.fullname" .) .Release.Namespace }}
{{- else }}
{{- required "nats.url is required" .Values.nats.url }}
{{- end }}
{{- end }}

{{/* Arguments both binaries take: NATS, configuration source, policy, stream. */}}
{{- define "sluice.commonArgs" -}}
- --nats-url={{ include "sluice.natsURL" . }}
{{- if .Values.nats.credentialsSecret }}
- --nats-creds=/etc/sluice/nats-creds/{{ .Values.nats.credentialsSecretKey }}
{{- end }}
{{- if .Values.nats.tls.caSecret }}
- --nats-tls-ca=/etc/sluice/nats-ca/{{ .Values.nats.tls.caSecretKey }}
{{- end }}
{{- if .Values.nats.tls.clientSecret }}
- --nats-tls-cert=/etc/sluice/nats-client/tls.crt
- --nats-tls-key=/etc/sluice/nats-client/tls.key
{{- end }}
- --metrics-addr=0.0.0.0:{{ .Values.metrics.port }}
- --log-format={{ .Values.logFormat }}
{{- with .Values.rbac.tenantNamespaces }}
- --watch-namespaces={{ join "," . }}
{{- end }}
{{- if .Values.requireAuthentication }}
- --require-authentication
{{- end }}
{{- if .Values.allowCrossNamespace }}
- --allow-cross-namespace
{{- end }}
{{- with .Values.interceptorAllow }}
- --interceptor-allow={{ join "," . }}
{{- end }}
{{- if .Values.tenants }}
- --tenants-file=/etc/sluice/tenants/tenants.yaml
{{- end }}
- --stream-max-age={{ .Values.stream.maxAge }}
- --stream-replicas={{ .Values.stream.replicas }}
- --stream-duplicate-window={{ .Values.stream.duplicateWindow }}
{{- with .Values.stream.maxBytes }}
- --stream-max-bytes={{ . }}
{{- end }}
{{- if .Values.stream.maxMessages }}
- --stream-max-messages={{ int64 .Values.stream.maxMessages }}
{{- end }}
- --stream-max-consumers={{ int64 .Values.stream.maxConsumers }}
{{- end }}

{{/* Volumes both binaries mount: NATS secrets and the tenants file. */}}
{{- define "sluice.volumes" -}}
{{- if .Values.nats.credentialsSecret }}
- name: nats-creds
  secret:
    secretName: {{ .Values.nats.credentialsSecret }}
    defaultMode: 0440
    items:
      - key: {{ .Values.nats.credentialsSecretKey }}
        path: {{ .Values.nats.credentialsSecretKey }}
{{- end }}
{{- if .Values.nats.tls.caSecret }}
- name: nats-ca
  secret:
    secretName: {{ .Values.nats.tls.caSecret }}
    defaultMode: 0444
    items:
      - key: {{ .Values.nats.tls.caSecretKey }}
        path: {{ .Values.nats.tls.caSecretKey }}
{{- end }}
{{- if .Values.nats.tls.clientSecret }}
- name: nats-client
  secret:
    secretName: {{ .Values.nats.tls.clientSecret }}
    defaultMode: 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- if .Values.tenants }}
- name: tenants
  configMap:
    name: {{ include "sluice.fullname" . }}-tenants
{{- end }}
{{- end }}

{{- define "sluice.volumeMounts" -}}
{{- if .Values.nats.credentialsSecret }}
- name: nats-creds
  mountPath: /etc/sluice/nats-creds
  readOnly: true
{{- end }}
{{- if .Values.nats.tls.caSecret }}
- name: nats-ca
  mountPath: /etc/sluice/nats-ca
  readOnly: true
{{- end }}
{{- if .Values.nats.tls.clientSecret }}
- name: nats-client
  mountPath: /etc/sluice/nats-client
  readOnly: true
{{- end }}
{{- if .Values.tenants }}
{{- /* A directory mount, not subPath, so that edits reach the pod and are reloaded. */}}
- name: tenants
  mountPath: /etc/sluice/tenants
  readOnly: true
{{- end }}
{{- end }}

{{/* The restricted Pod Security Standard, for every pod. */}}
{{- define "sluice.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "sluice.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Probes on the operations port. */}}
{{- define "sluice.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: metrics
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet:
    path: /healthz
    port: metrics
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: metrics
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 2
{{- end }}

{{/* Spread replicas over nodes and zones unless the values say otherwise: (dict "ctx" $ "component" "ingest" "constraints" list). */}}
{{- define "sluice.topologySpread" -}}
{{- if .constraints }}
{{- toYaml .constraints }}
{{- else }}
{{- range list "kubernetes.io/hostname" "topology.kubernetes.io/zone" }}
- maxSkew: 1
  topologyKey: {{ . }}
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "sluice.selectorLabels" (dict "ctx" $.ctx "component" $.component) | nindent 6 }}
{{- end }}
{{- end }}
{{- end }}

{{/*
`--worker-threads` of a component (`.Values.ingest` or `.Values.dispatcher`): its
`workerThreads`, else its CPU request rounded up to whole CPUs (`100m` → 1, `1500m` → 2,
`2` → 2); empty when neither is set, so that the runtime takes one thread per CPU the
container may use.
*/}}
{{- define "sluice.workerThreads" -}}
{{- $cpu := "" -}}
{{- with .resources }}{{ with .requests }}{{ with .cpu }}{{ $cpu = toString . }}{{ end }}{{ end }}{{ end -}}
{{- if gt (int .workerThreads) 0 -}}
{{ int .workerThreads }}
{{- else if hasSuffix "m" $cpu -}}
{{ max 1 (div (add (trimSuffix "m" $cpu | atoi) 999) 1000) }}
{{- else if $cpu -}}
{{ max 1 (ceil (float64 $cpu) | int) }}
{{- end -}}
{{- end -}}
