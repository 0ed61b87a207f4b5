# syntax=docker/dockerfile:1
# Build with the Maven wrapper on a JDK 25, run on a JRE 25 as a non-root user.
FROM eclipse-temurin:25-jdk AS build
WORKDIR /src
COPY .mvn/ .mvn/
COPY mvnw pom.xml openapi.yaml .openapi-generator-ignore ./
RUN --mount=type=cache,target=/root/.m2 ./mvnw -B -ntp -q dependency:go-offline -DskipTests || true
COPY src/ src/
RUN --mount=type=cache,target=/root/.m2 ./mvnw -B -ntp -q package -DskipTests \
 && java -Djarmode=tools -jar target/modelpress-*.jar extract --layers --launcher --destination /layers

FROM eclipse-temurin:25-jre
RUN groupadd --system modelpress && useradd --system --gid modelpress --home /var/lib/modelpress modelpress \
 && mkdir -p /var/lib/modelpress && chown modelpress:modelpress /var/lib/modelpress
WORKDIR /var/lib/modelpress
COPY --from=build /layers/dependencies/ /app/
COPY --from=build /layers/spring-boot-loader/ /app/
COPY --from=build /layers/snapshot-dependencies/ /app/
COPY --from=build /layers/application/ /app/
USER modelpress
EXPOSE 8080
# ND4J and ONNX Runtime load native code; the Vector API speeds up the quantization kernels.
# The heap takes a share of the container's memory limit, leaving room for native buffers.
ENV JAVA_TOOL_OPTIONS="--enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -XX:MaxRAMPercentage=60"
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD wget -qO- http://127.0.0.1:8080/actuator/health/readiness >/dev/null 2>&1 || exit 1
ENTRYPOINT ["java", "-cp", "/app", "org.springframework.boot.loader.launch.JarLauncher"]
