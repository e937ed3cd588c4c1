{{/*
The proxy container, shared by the proxy Deployment of each Gateway and by the sidecar form.
Pass a dict:
  root           the chart's context ($)
  gateway        "namespace/name" of the Gateway whose configuration the proxy serves
  listenAddress  where the Gateway's listeners bind: "0.0.0.0", or "127.0.0.1" for a sidecar
  ports          the listener ports to declare (a map from port to protocol), or nothing
  preStop        whether to pause before shutting down, so Service endpoints drop it first
  native         render it as a Kubernetes native sidecar (an init container that keeps running)
*/}}
{{- define "tollgate.proxyContainer" -}}
{{- $values := .root.Values -}}
{{- $proxy := $values.proxy -}}
- name: tollgate-proxy
  image: {{ include "tollgate.image" .root | quote }}
  imagePullPolicy: {{ $values.image.pullPolicy }}
  {{- if .native }}
  restartPolicy: Always
  {{- end }}
  args:
    - proxy
    - --controller={{ include "tollgate.controllerURL" .root }}
    - --gateway={{ .gateway }}
    - --ca={{ include "tollgate.tlsMountPath" .root }}/ca.crt
    - --cert={{ include "tollgate.tlsMountPath" .root }}/tls.crt
    - --key={{ include "tollgate.tlsMountPath" .root }}/tls.key
    - --admin-addr=0.0.0.0:{{ $proxy.adminPort }}
    - --listen-address={{ .listenAddress }}
    - --drain-timeout={{ $proxy.drainTimeout }}
    - --worker-threads={{ $proxy.workerThreads }}
    {{- with $values.otlp.endpoint }}
    - --otlp-endpoint={{ . }}
    {{- end }}
    {{- if $proxy.auditLog.enabled }}
    - --audit-log={{ $proxy.auditLog.directory }}/audit.jsonl
    {{- end }}
    {{- if and $values.otlp.endpoint $values.otlp.auditRecords }}
    - --audit-otlp
    {{- end }}
    {{- range $proxy.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  env:
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    {{- include "tollgate.logEnv" .root | nindent 4 }}
    {{- if $values.budgetStore.existingSecret.name }}
    - name: TOLLGATE_BUDGET_STORE
      valueFrom:
        secretKeyRef:
          name: {{ $values.budgetStore.existingSecret.name }}
          key: {{ $values.budgetStore.existingSecret.key }}
    {{- else if ne $values.budgetStore.url "memory" }}
    - name: TOLLGATE_BUDGET_STORE
      value: {{ $values.budgetStore.url | quote }}
    {{- end }}
    {{- with $values.otlp.protocol }}
    - name: OTEL_EXPORTER_OTLP_PROTOCOL
      value: {{ . | quote }}
    {{- end }}
    {{- with $proxy.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: admin
      containerPort: {{ $proxy.adminPort }}
      protocol: TCP
    {{- range $port, $protocol := .ports }}
    - name: {{ $protocol }}-{{ $port }}
      containerPort: {{ $port }}
      protocol: TCP
    {{- end }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: admin
    periodSeconds: 10
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readyz
      port: admin
    periodSeconds: 5
    failureThreshold: 2
  {{- if and .preStop $proxy.preStopSleepSeconds }}
  lifecycle:
    preStop:
      sleep:
        seconds: {{ $proxy.preStopSleepSeconds }}
  {{- end }}
  resources:
    {{- toYaml $proxy.resources | nindent 4 }}
  securityContext:
    {{- include "tollgate.containerSecurityContext" .root | nindent 4 }}
  volumeMounts:
    - name: tollgate-proxy-tls
      mountPath: {{ include "tollgate.tlsMountPath" .root }}
      readOnly: true
    {{- if $proxy.auditLog.enabled }}
    - name: tollgate-audit-log
      mountPath: {{ $proxy.auditLog.directory }}
    {{- end }}
{{- end -}}

{{/* The volumes the proxy container mounts; pass the chart's context ($). */}}
{{- define "tollgate.proxyVolumes" -}}
- name: tollgate-proxy-tls
  secret:
    secretName: {{ include "tollgate.proxyTLSSecretName" . }}
{{- if .Values.proxy.auditLog.enabled }}
- name: tollgate-audit-log
  {{- toYaml .Values.proxy.auditLog.volume | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The proxy as a sidecar of an application: it serves one Gateway's configuration on localhost
(the Gateway's listener ports on 127.0.0.1) and its admin endpoints on the pod's address for
probes and metrics. Use it from a chart that depends on this one:

  initContainers:
    {{- include "tollgate.proxySidecar" (dict "root" $ "gateway" "apps/my-gateway") | nindent 4 }}
  volumes:
    {{- include "tollgate.proxyVolumes" $ | nindent 4 }}

Pass "native" false to get a plain container to list under `containers` (clusters older than
Kubernetes 1.29, which lack native sidecars). The pod must run in the namespace of the proxies'
client certificate Secret (see tls.proxySecretName).
*/}}
{{- define "tollgate.proxySidecar" -}}
{{- $native := ternary true .native (not (hasKey . "native")) -}}
{{- include "tollgate.proxyContainer" (dict "root" .root "gateway" .gateway "listenAddress" "127.0.0.1" "native" $native "preStop" false) -}}
{{- end -}}
