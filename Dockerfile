# syntax=docker/dockerfile:1
# modelpress: build with the Maven wrapper on a JDK 25, run on a JRE 25 as a non-root user.
#   docker build -t modelpress .
# One image, two roles: MODELPRESS_WORKER_ENABLED=false gives an API-only process; true (the
# default) runs workers too. docs/deploy.md explains compose and the Helm chart.

FROM eclipse-temurin:25-jdk AS build
WORKDIR /src
# Dependencies first, so a source change does not download the world again.
COPY .mvn/ .mvn/
COPY mvnw pom.xml openapi.yaml .openapi-generator-ignore ./
RUN --mount=type=cache,target=/root/.m2 ./mvnw -B -ntp -q dependency:go-offline -DskipTests || true
COPY src/ src/
RUN --mount=type=cache,target=/root/.m2 ./mvnw -B -ntp -q package -DskipTests \
 && java -Djarmode=tools -jar target/modelpress-*.jar extract --layers --launcher --destination /layers

FROM eclipse-temurin:25-jre
# curl only serves the HEALTHCHECK below: the Temurin JRE image ships neither curl nor wget.
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 modelpress \
 && useradd --system --uid 10001 --gid modelpress --home-dir /var/lib/modelpress --shell /usr/sbin/nologin modelpress \
 && mkdir -p /var/lib/modelpress/data \
 && chown -R modelpress:modelpress /var/lib/modelpress
# Relative paths of the defaults (data/spool, data/work, data/artifacts) resolve here.
WORKDIR /var/lib/modelpress
# Layers from the least to the most often changed, so a code change rebuilds only the last one.
COPY --from=build /layers/dependencies/ /app/
COPY --from=build /layers/spring-boot-loader/ /app/
COPY --from=build /layers/snapshot-dependencies/ /app/
COPY --from=build /layers/application/ /app/
# Numeric user, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
USER 10001:10001
# server.port (default 8080); Actuator lives on the same port under /actuator.
EXPOSE 8080
VOLUME ["/var/lib/modelpress/data"]
# ND4J and ONNX Runtime load native code (--enable-native-access); the quantization kernels use the
# Vector API (--add-modules jdk.incubator.vector). The heap takes 60% of the container's memory
# limit, leaving the rest for ND4J/ONNX Runtime native buffers, memory maps and metaspace. An
# OutOfMemoryError ends the process, so the orchestrator restarts it and the job's lease expires
# (it is then claimed again) instead of a half-dead JVM holding it. JavaCPP (ND4J) extracts its
# native libraries under java.io.tmpdir, which stays writable under a read-only root filesystem.
ENV JDK_JAVA_OPTIONS="--enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -XX:MaxRAMPercentage=60 -XX:+ExitOnOutOfMemoryError -Dorg.bytedeco.javacpp.cachedir=/tmp/javacpp"
HEALTHCHECK --interval=15s --timeout=3s --start-period=90s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:8080/actuator/health/readiness || exit 1
# Exec form: java is PID 1 and gets SIGTERM, so running jobs are handed back to the queue.
ENTRYPOINT ["java", "-cp", "/app", "org.springframework.boot.loader.launch.JarLauncher"]
