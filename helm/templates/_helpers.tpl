{{/*
Named templates shared by every manifest. Names and fullname logic follow `helm create`, so the
release `todo` gets Services named `todo-backend` and `todo-frontend`.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "todo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's object-name prefix: fullnameOverride, else the release name when it already
contains the chart name, else `<release>-<chart>`. Truncated to leave room for a component suffix.
*/}}
{{- define "todo.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* `<chart>-<version>` for the helm.sh/chart label. */}}
{{- define "todo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Per-component names: every object of a component shares it (Deployment, Service, ServiceAccount, ...). */}}
{{- define "todo.backend.fullname" -}}
{{- printf "%s-backend" (include "todo.fullname" .) }}
{{- end }}
{{- define "todo.frontend.fullname" -}}
{{- printf "%s-frontend" (include "todo.fullname" .) }}
{{- end }}
{{- define "todo.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "todo.fullname" .) }}
{{- end }}
{{- define "todo.test.fullname" -}}
{{- printf "%s-test" (include "todo.fullname" .) }}
{{- end }}

{{/*
Selector labels: only name, instance and component, because selectors are immutable.
Call with (dict "ctx" $ "component" "backend").
*/}}
{{- define "todo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "todo.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The recommended labels, carried by every object and pod. Call like todo.selectorLabels. */}}
{{- define "todo.labels" -}}
helm.sh/chart: {{ include "todo.chart" .ctx }}
{{ include "todo.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: {{ include "todo.name" .ctx }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{/* `repository:tag`, the tag defaulting to the chart's appVersion. Call with (dict "ctx" $ "image" .Values.x.image). */}}
{{- define "todo.image" -}}
{{- printf "%s:%s" .image.repository (include "todo.imageTag" .) }}
{{- end }}
{{- define "todo.imageTag" -}}
{{- .image.tag | default .ctx.Chart.AppVersion }}
{{- end }}

{{/* The Secret that holds JWT_SECRET and the other secret keys: existingSecret, or the one this chart renders. */}}
{{- define "todo.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "todo.backend.fullname" .) }}
{{- end }}

{{/* The SQLite URL of the file on the backend's volume, e.g. sqlite:///data/todo.db. */}}
{{- define "todo.sqliteUrl" -}}
{{- printf "sqlite://%s/%s" (trimSuffix "/" .Values.database.sqlite.mountPath) .Values.database.sqlite.fileName }}
{{- end }}

{{/*
terminationGracePeriodSeconds from the same values that set the app's shutdown: the preStop pause,
then SHUTDOWN_DRAIN_SECONDS, then SHUTDOWN_TIMEOUT_SECONDS, plus a 5 s margin. Computed, so the
grace period cannot drift below what the app needs. Call with a component's `shutdown` values.
*/}}
{{- define "todo.terminationGracePeriodSeconds" -}}
{{- add .preStopSleepSeconds .drainSeconds .timeoutSeconds 5 }}
{{- end }}

{{/* Pod security context: the restricted Pod Security Standard, as the images' user 65532. */}}
{{- define "todo.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container security context: PSS restricted requires these on every container, not only on the pod. */}}
{{- define "todo.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop:
    - ALL
{{- end }}

{{/*
Spread replicas over nodes when there are several, without ever leaving one Pending on a
single-node cluster (ScheduleAnyway). Call with (dict "ctx" $ "component" "frontend").
*/}}
{{- define "todo.topologySpread" -}}
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "todo.selectorLabels" . | nindent 6 }}
  matchLabelKeys:
    - pod-template-hash
{{- end }}

{{/* The egress rule that lets a pod resolve names (kube-dns/CoreDNS, UDP and TCP 53). */}}
{{- define "todo.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Values.networkPolicy.dnsNamespace }}
      podSelector:
        matchLabels:
          k8s-app: kube-dns
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end }}

{{/*
Checks that the schema cannot express, failing with a message that names the values to change.
Included once, by the backend Deployment (always rendered).
*/}}
{{- define "todo.validate" -}}
{{- $db := .Values.database.type }}
{{- $noSecret := not .Values.secrets.existingSecret }}
{{- if and $noSecret (not .Values.secrets.jwtSecret) }}
{{- fail "no JWT secret: set secrets.existingSecret to a Secret you created (key JWT_SECRET; `cargo xtask secrets` creates todo-secrets), or set secrets.jwtSecret (at least 32 bytes, e.g. `openssl rand -hex 32`)" }}
{{- end }}
{{- if eq $db "sqlite" }}
{{- if gt (int .Values.backend.replicas) 1 }}
{{- fail (printf "backend.replicas is %v, but database.type=sqlite allows exactly 1 backend replica (one writer on a ReadWriteOnce volume); use database.type=postgresql or external for more" .Values.backend.replicas) }}
{{- end }}
{{- if .Values.backend.autoscaling.enabled }}
{{- fail "backend.autoscaling.enabled needs several backend replicas, but database.type=sqlite allows exactly 1; use database.type=postgresql or external" }}
{{- end }}
{{- end }}
{{- if and (eq $db "postgresql") $noSecret (not .Values.database.postgresql.password) }}
{{- fail "database.type=postgresql needs a password: set secrets.existingSecret (a Secret with key POSTGRES_PASSWORD) or database.postgresql.password" }}
{{- end }}
{{- if and (eq $db "external") $noSecret (not .Values.database.external.url) }}
{{- fail "database.type=external needs its URL: set secrets.existingSecret (a Secret with key DATABASE_URL) or database.external.url" }}
{{- end }}
{{- if and (eq $db "external") .Values.networkPolicy.enabled (not .Values.database.external.egressCidrs) }}
{{- fail "database.type=external with networkPolicy.enabled needs database.external.egressCidrs: the address range(s) of the database (e.g. 192.0.2.10/32), or 0.0.0.0/0 to allow any address on database.external.port" }}
{{- end }}
{{- if and .Values.backend.openai.enabled $noSecret (not .Values.backend.openai.apiKey) }}
{{- fail "backend.openai.enabled needs an API key: set secrets.existingSecret (a Secret with key OPENAI_API_KEY) or backend.openai.apiKey" }}
{{- end }}
{{- if ge (int .Values.frontend.backendTimeoutSeconds) (int .Values.frontend.requestTimeoutSeconds) }}
{{- fail (printf "frontend.backendTimeoutSeconds (%v) must be shorter than frontend.requestTimeoutSeconds (%v), so a slow backend gets an error page instead of a timeout" .Values.frontend.backendTimeoutSeconds .Values.frontend.requestTimeoutSeconds) }}
{{- end }}
{{- if and .Values.frontend.service.nodePort (ne .Values.frontend.service.type "NodePort") }}
{{- fail "frontend.service.nodePort is set, but frontend.service.type is not NodePort" }}
{{- end }}
{{- end }}
