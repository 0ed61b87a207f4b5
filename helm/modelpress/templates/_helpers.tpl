{{/* Chart name, overridable. */}}
{{- define "modelpress.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release + chart, unless the release name already contains the chart name. */}}
{{- define "modelpress.fullname" -}}
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

{{- define "modelpress.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "modelpress.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "modelpress.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelpress.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "modelpress.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelpress.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "modelpress.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret with the database credentials: the user's own, or the one this chart creates. */}}
{{- define "modelpress.databaseSecretName" -}}
{{- default (printf "%s-database" (include "modelpress.fullname" .)) .Values.database.existingSecret }}
{{- end }}

{{/* The Secret with static S3 keys, or empty when the AWS default credentials chain is used. */}}
{{- define "modelpress.s3SecretName" -}}
{{- if .Values.storage.s3.existingSecret }}
{{- .Values.storage.s3.existingSecret }}
{{- else if and .Values.storage.s3.accessKey .Values.storage.s3.secretKey }}
{{- printf "%s-s3" (include "modelpress.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The pod template shared by both roles. Called with (dict "root" $ "role" "api"|"worker" "values" <role values>).
*/}}
{{- define "modelpress.podSpec" -}}
{{- $root := .root }}
{{- $v := .values -}}
serviceAccountName: {{ include "modelpress.serviceAccountName" $root }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
containers:
  - name: modelpress
    image: {{ include "modelpress.image" $root | quote }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    ports:
      - name: http
        containerPort: {{ $root.Values.containerPort }}
        protocol: TCP
    envFrom:
      - configMapRef:
          name: {{ include "modelpress.fullname" $root }}
    env:
      - name: MODELPRESS_WORKER_ENABLED
        value: {{ eq .role "worker" | quote }}
      {{- if eq .role "worker" }}
      - name: MODELPRESS_WORKER_CONCURRENCY
        value: {{ $v.concurrency | quote }}
      - name: MODELPRESS_WORKER_EVALUATION_THREADS
        value: {{ $v.evaluationThreads | quote }}
      {{- end }}
      - name: SPRING_DATASOURCE_USERNAME
        valueFrom:
          secretKeyRef:
            name: {{ include "modelpress.databaseSecretName" $root }}
            key: {{ $root.Values.database.usernameKey }}
      - name: SPRING_DATASOURCE_PASSWORD
        valueFrom:
          secretKeyRef:
            name: {{ include "modelpress.databaseSecretName" $root }}
            key: {{ $root.Values.database.passwordKey }}
      {{- with include "modelpress.s3SecretName" $root }}
      - name: MODELPRESS_STORAGE_S3_ACCESS_KEY
        valueFrom:
          secretKeyRef:
            name: {{ . }}
            key: {{ $root.Values.storage.s3.accessKeyKey }}
      - name: MODELPRESS_STORAGE_S3_SECRET_KEY
        valueFrom:
          secretKeyRef:
            name: {{ . }}
            key: {{ $root.Values.storage.s3.secretKeyKey }}
      {{- end }}
    {{- if eq .role "api" }}
    lifecycle:
      preStop:
        exec:
          command: ["sleep", {{ $v.preStopDelaySeconds | quote }}]
    {{- end }}
    startupProbe:
      httpGet: {path: /actuator/health/liveness, port: http}
      periodSeconds: 5
      failureThreshold: {{ $root.Values.probes.startupFailureThreshold }}
    livenessProbe:
      httpGet: {path: /actuator/health/liveness, port: http}
      periodSeconds: {{ $root.Values.probes.livenessPeriodSeconds }}
      timeoutSeconds: 3
      failureThreshold: 3
    readinessProbe:
      httpGet: {path: /actuator/health/readiness, port: http}
      periodSeconds: {{ $root.Values.probes.readinessPeriodSeconds }}
      timeoutSeconds: 3
      failureThreshold: 3
    resources:
      {{- toYaml $v.resources | nindent 6 }}
    volumeMounts:
      # The app's relative paths (data/spool, data/work, data/artifacts) resolve under its working directory.
      - name: data
        mountPath: /var/lib/modelpress/data
      # ONNX Runtime and JavaCPP (ND4J) unpack their native libraries here; Tomcat keeps its work dir here.
      - name: tmp
        mountPath: /tmp
      {{- if eq $root.Values.storage.type "filesystem" }}
      - name: artifacts
        mountPath: /var/lib/modelpress/artifacts
      {{- end }}
volumes:
  - name: data
    emptyDir:
      sizeLimit: {{ $v.dataSizeLimit }}
  - name: tmp
    emptyDir:
      sizeLimit: 2Gi
  {{- if eq $root.Values.storage.type "filesystem" }}
  - name: artifacts
    persistentVolumeClaim:
      claimName: {{ required "storage.filesystem.existingClaim is required when storage.type is filesystem: API and worker pods must share one ReadWriteMany volume" $root.Values.storage.filesystem.existingClaim }}
  {{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
affinity:
  {{- if $v.affinity }}
  {{- toYaml $v.affinity | nindent 2 }}
  {{- else }}
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "modelpress.selectorLabels" $root | nindent 14 }}
              app.kubernetes.io/component: {{ .role }}
  {{- end }}
{{- end }}

{{/* Checksums that roll the pods when configuration or chart-made secrets change. */}}
{{- define "modelpress.configChecksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}

{{/*
Annotations for a Prometheus that discovers pods by annotation: /actuator/prometheus on the http
port answers without an API key. Empty when prometheus.scrape is false.
*/}}
{{- define "modelpress.scrapeAnnotations" -}}
{{- if .Values.prometheus.scrape }}
prometheus.io/scrape: "true"
prometheus.io/path: /actuator/prometheus
prometheus.io/port: {{ .Values.containerPort | quote }}
{{- end }}
{{- end }}
