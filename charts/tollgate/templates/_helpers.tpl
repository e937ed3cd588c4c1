{{/*
Names, labels and the values several templates share.
*/}}

{{/* The release's base name: the release name, with the chart name unless it already holds it. */}}
{{- define "tollgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "tollgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component; pass (dict "root" $ "component" "controller"). */}}
{{- define "tollgate.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The controller's name: its Deployment, Service, ServiceAccount and RBAC objects. */}}
{{- define "tollgate.controllerName" -}}
{{- printf "%s-controller" (include "tollgate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The proxies' ServiceAccount. */}}
{{- define "tollgate.proxyServiceAccountName" -}}
{{- if .Values.proxy.serviceAccount.create -}}
{{- default (printf "%s-proxy" (include "tollgate.fullname" .)) .Values.proxy.serviceAccount.name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- default "default" .Values.proxy.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The controller's ServiceAccount. */}}
{{- define "tollgate.controllerServiceAccountName" -}}
{{- if .Values.controller.serviceAccount.create -}}
{{- default (include "tollgate.controllerName" .) .Values.controller.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.controller.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The name of the objects serving one Gateway, `<gateway>-<class>` as other Gateway API implementations name them; pass (dict "root" $ "gateway" $gateway). */}}
{{- define "tollgate.proxyName" -}}
{{- printf "%s-%s" .gateway.name .root.Values.gatewayClass.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The image of both components. */}}
{{- define "tollgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secrets holding the push channel's CA, the controller's server certificate and the proxies' client certificate. */}}
{{- define "tollgate.caSecretName" -}}
{{- printf "%s-ca" (include "tollgate.fullname" .) -}}
{{- end -}}
{{- define "tollgate.serverTLSSecretName" -}}
{{- printf "%s-controller-tls" (include "tollgate.fullname" .) -}}
{{- end -}}
{{- define "tollgate.proxyTLSSecretName" -}}
{{- default (printf "%s-proxy-tls" (include "tollgate.fullname" .)) .Values.tls.proxySecretName -}}
{{- end -}}

{{/* The DNS names the controller's push Service answers to: its server certificate's SANs. */}}
{{- define "tollgate.controllerDNSNames" -}}
{{- $service := include "tollgate.controllerName" . -}}
{{- $namespace := .Release.Namespace -}}
- {{ $service }}
- {{ $service }}.{{ $namespace }}
- {{ $service }}.{{ $namespace }}.svc
- {{ $service }}.{{ $namespace }}.svc.{{ .Values.clusterDomain }}
{{- end -}}

{{/* The URL proxies subscribe to: proxy.controllerAddress, else this release's controller Service. */}}
{{- define "tollgate.controllerURL" -}}
{{- if .Values.proxy.controllerAddress -}}
{{- .Values.proxy.controllerAddress -}}
{{- else -}}
{{- printf "https://%s.%s.svc:%v" (include "tollgate.controllerName" .) .Release.Namespace .Values.controller.pushPort -}}
{{- end -}}
{{- end -}}

{{/* Where a component's certificate, key and CA are mounted. */}}
{{- define "tollgate.tlsMountPath" -}}
/etc/tollgate/tls
{{- end -}}

{{/* The pod securityContext of every Tollgate pod. */}}
{{- define "tollgate.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The container securityContext of every Tollgate container. */}}
{{- define "tollgate.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Environment of both components: log level and format. */}}
{{- define "tollgate.logEnv" -}}
- name: RUST_LOG
  value: {{ .Values.logLevel | quote }}
- name: TOLLGATE_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
{{- end -}}

{{/* The distinct ports of a Gateway's listeners, as a YAML map from port to lowercased protocol (the first listener on a port wins). */}}
{{- define "tollgate.listenerPorts" -}}
{{- $ports := dict -}}
{{- range .listeners -}}
{{- if not (hasKey $ports (toString .port)) -}}
{{- $_ := set $ports (toString .port) (lower .protocol) -}}
{{- end -}}
{{- end -}}
{{- toYaml $ports -}}
{{- end -}}

{{/* Whether any listener of a Gateway needs a privileged port (below 1024): the pod then lowers net.ipv4.ip_unprivileged_port_start so a non-root proxy can bind it. Prints "true" or nothing. */}}
{{- define "tollgate.needsLowPorts" -}}
{{- range .listeners -}}
{{- if lt (int .port) 1024 }}true{{ end -}}
{{- end -}}
{{- end -}}

{{/* The Gateways this release serves, each with its settings defaulted. */}}
{{- define "tollgate.gateways" -}}
{{- $out := list -}}
{{- range .Values.gateways -}}
{{- if not .name -}}{{- fail "every entry of gateways needs a name" -}}{{- end -}}
{{- if not .listeners -}}{{- fail (printf "gateway %s needs listeners: the proxy's ports come from them" .name) -}}{{- end -}}
{{- $gateway := deepCopy . -}}
{{- if not (hasKey $gateway "create") -}}{{- $_ := set $gateway "create" true -}}{{- end -}}
{{- $out = append $out $gateway -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* The Gateways served by proxy Deployments of this chart: all but those marked sidecarOnly. */}}
{{- define "tollgate.deployedGateways" -}}
{{- $out := list -}}
{{- range include "tollgate.gateways" . | fromYamlArray -}}
{{- if not .sidecarOnly -}}
{{- $out = append $out . -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}
