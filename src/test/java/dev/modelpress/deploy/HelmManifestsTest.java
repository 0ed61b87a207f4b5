package dev.modelpress.deploy;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.springframework.boot.convert.DurationStyle;
import org.yaml.snakeyaml.Yaml;

/**
 * Reads the manifests that {@code .ci/helm-check} renders from {@code helm/modelpress} into
 * {@code target/helm/} (default values and the production-like values) and checks the scale-out
 * wiring: separate API and worker Deployments of one image, told apart only by
 * {@code MODELPRESS_WORKER_ENABLED}, reading the same ConfigMap and the same database (and S3)
 * Secret; probes on Actuator's liveness/readiness; a shutdown budget that lets running jobs go
 * back to the queue. Skipped when helm has not run (no helm binary in a plain {@code mvn test}).
 */
class HelmManifestsTest {

  private static final Path RENDERED = Path.of("target", "helm");
  private static ConfigurationBinding binding;

  @BeforeAll
  static void loadBinding() throws IOException {
    binding = ConfigurationBinding.load();
  }

  @ParameterizedTest
  @ValueSource(strings = {"default", "production"})
  void apiAndWorkerAreSeparateDeploymentsOfOneImageSharingTheDatabaseSecret(String values) throws IOException {
    Manifests m = load(values);
    List<Map<String, Object>> deployments = m.ofKind("Deployment");
    assertThat(deployments.stream().map(HelmManifestsTest::name).toList()).containsExactlyInAnyOrder("modelpress-api", "modelpress-worker");
    Map<String, Object> api = m.named("Deployment", "modelpress-api");
    Map<String, Object> worker = m.named("Deployment", "modelpress-worker");

    assertThat(env(api, "MODELPRESS_WORKER_ENABLED").get("value")).isEqualTo("false");
    assertThat(env(worker, "MODELPRESS_WORKER_ENABLED").get("value")).isEqualTo("true");
    assertThat(container(api).get("image")).isEqualTo(container(worker).get("image"));
    assertThat(envFromConfigMaps(api)).isEqualTo(envFromConfigMaps(worker)).hasSize(1);

    for (String variable : List.of("SPRING_DATASOURCE_USERNAME", "SPRING_DATASOURCE_PASSWORD")) {
      Map<String, Object> apiRef = secretRef(api, variable);
      assertThat(apiRef).as(variable).isEqualTo(secretRef(worker, variable));
    }
    String dbSecret = (String) secretRef(api, "SPRING_DATASOURCE_PASSWORD").get("name");
    Map<String, Object> config = data(m.named("ConfigMap", envFromConfigMaps(api).getFirst()));
    assertThat((String) config.get("SPRING_DATASOURCE_URL")).startsWith("jdbc:postgresql://");
    assertThat(config.get("MODELPRESS_STORAGE_TYPE")).isEqualTo("s3");

    if (values.equals("production")) {
      // existingSecret: the chart references the user's Secret and creates none for the database.
      assertThat(dbSecret).isEqualTo("modelpress-db-credentials");
      assertThat(secretRef(api, "SPRING_DATASOURCE_USERNAME").get("key")).isEqualTo("user");
      assertThat(m.ofKind("Secret")).isEmpty();
      assertThat(secretRef(api, "MODELPRESS_STORAGE_S3_SECRET_KEY"))
          .isEqualTo(secretRef(worker, "MODELPRESS_STORAGE_S3_SECRET_KEY"))
          .containsEntry("name", "modelpress-s3-credentials");
      assertThat(config.get("MODELPRESS_STORAGE_S3_BUCKET")).isEqualTo("acme-modelpress-artifacts");
    } else {
      Map<String, Object> secret = m.named("Secret", dbSecret);
      assertThat(map(secret.get("stringData")).keySet()).containsExactlyInAnyOrder("username", "password");
      // No static keys by default: the AWS default credentials chain (e.g. IRSA) is used.
      assertThat(envNames(api)).doesNotContain("MODELPRESS_STORAGE_S3_ACCESS_KEY");
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"default", "production"})
  void everyRenderedVariableBindsToARealProperty(String values) throws IOException {
    Manifests m = load(values);
    List<String> names = new ArrayList<>(data(m.ofKind("ConfigMap").getFirst()).keySet());
    for (Map<String, Object> d : m.ofKind("Deployment")) {
      names.addAll(envNames(d));
    }
    assertThat(names).contains("SPRING_DATASOURCE_URL", "MODELPRESS_WORKER_LEASE", "MODELPRESS_WORKER_ENABLED");
    for (String name : names) {
      if (name.startsWith("MODELPRESS_")) {
        Object value = data(m.ofKind("ConfigMap").getFirst()).getOrDefault(name, "1");
        assertThat(binding.bindingsOfEnvironmentVariable(name, String.valueOf(value)))
            .as("%s binds to a modelpress property", name).isEqualTo(1);
      } else if (name.startsWith("SPRING_")) {
        assertThat(binding.isKnownSpringVariable(name)).as("%s is a Spring Boot property", name).isTrue();
      }
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"default", "production"})
  void probesHitActuatorAndTheServiceRoutesToApiPodsOnly(String values) throws IOException {
    Manifests m = load(values);
    for (String deployment : List.of("modelpress-api", "modelpress-worker")) {
      Map<String, Object> c = container(m.named("Deployment", deployment));
      assertThat(probePath(c, "livenessProbe")).isEqualTo("/actuator/health/liveness");
      assertThat(probePath(c, "readinessProbe")).isEqualTo("/actuator/health/readiness");
      assertThat(probePath(c, "startupProbe")).isEqualTo("/actuator/health/liveness");
      List<Map<String, Object>> ports = list(c.get("ports"));
      assertThat(ports).singleElement().satisfies(p -> {
        assertThat(p.get("name")).isEqualTo("http");
        assertThat(p.get("containerPort")).isEqualTo(8080); // server.port
      });
    }
    Map<String, Object> service = m.ofKind("Service").getFirst();
    Map<String, Object> selector = map(map(service.get("spec")).get("selector"));
    assertThat(selector).containsEntry("app.kubernetes.io/component", "api");
    Map<String, Object> apiPodLabels = podLabels(m.named("Deployment", "modelpress-api"));
    Map<String, Object> workerPodLabels = podLabels(m.named("Deployment", "modelpress-worker"));
    assertThat(apiPodLabels).containsAllEntriesOf(selector);
    assertThat(workerPodLabels.entrySet().containsAll(selector.entrySet())).as("worker pods match the Service").isFalse();

    for (Map<String, Object> pdb : m.ofKind("PodDisruptionBudget")) {
      Map<String, Object> match = map(map(map(pdb.get("spec")).get("selector")).get("matchLabels"));
      String component = (String) match.get("app.kubernetes.io/component");
      assertThat(name(pdb)).isEqualTo("modelpress-" + component);
      assertThat(podLabels(m.named("Deployment", "modelpress-" + component))).containsAllEntriesOf(match);
    }
    assertThat(m.ofKind("PodDisruptionBudget")).hasSize(2);
  }

  @ParameterizedTest
  @ValueSource(strings = {"default", "production"})
  void apiAndWorkerPodsAreAnnotatedForPrometheusOnTheHttpPort(String values) throws IOException {
    Manifests m = load(values);
    for (String deployment : List.of("modelpress-api", "modelpress-worker")) {
      Map<String, Object> d = m.named("Deployment", deployment);
      Map<String, Object> annotations =
          map(map(map(map(d.get("spec")).get("template")).get("metadata")).get("annotations"));
      // The path answers without an API key (ApiKeyTest); the port is the container's only one.
      assertThat(annotations).containsEntry("prometheus.io/scrape", "true")
          .containsEntry("prometheus.io/path", "/actuator/prometheus")
          .containsEntry("prometheus.io/port", String.valueOf(list(container(d).get("ports")).getFirst()
              .get("containerPort")));
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"default", "production"})
  void podsRunAsNonRootOnAReadOnlyRootWithWritableDataAndTmp(String values) throws IOException {
    Manifests m = load(values);
    for (Map<String, Object> d : m.ofKind("Deployment")) {
      Map<String, Object> pod = podSpec(d);
      assertThat(map(pod.get("securityContext"))).containsEntry("runAsNonRoot", true).containsEntry("runAsUser", 10001);
      Map<String, Object> c = container(d);
      assertThat(map(c.get("securityContext")))
          .containsEntry("readOnlyRootFilesystem", true).containsEntry("allowPrivilegeEscalation", false);
      assertThat(list(c.get("volumeMounts"))).extracting(v -> v.get("mountPath"))
          .contains("/var/lib/modelpress/data", "/tmp");
      assertThat(list(pod.get("volumes"))).filteredOn(v -> v.containsKey("emptyDir")).hasSize(2);
      assertThat(map(map(c.get("resources")).get("limits"))).containsKey("memory");
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"default", "production"})
  void terminationGraceLetsRunningJobsGoBackToTheQueue(String values) throws IOException {
    Manifests m = load(values);
    Map<String, Object> config = data(m.ofKind("ConfigMap").getFirst());
    Duration lease = DurationStyle.detectAndParse((String) config.get("MODELPRESS_WORKER_LEASE"));
    Duration phase = DurationStyle.detectAndParse((String) config.get("SPRING_LIFECYCLE_TIMEOUT_PER_SHUTDOWN_PHASE"));
    // On SIGTERM the web server drains for up to one shutdown phase, then the workers ask running jobs
    // to stop at their next checkpoint and wait up to one lease for them to be handed back.
    int workerGrace = (Integer) podSpec(m.named("Deployment", "modelpress-worker")).get("terminationGracePeriodSeconds");
    assertThat((long) workerGrace).isGreaterThanOrEqualTo(lease.plus(phase).toSeconds() + 10);

    Map<String, Object> api = m.named("Deployment", "modelpress-api");
    List<Object> preStop = list2(map(map(map(container(api).get("lifecycle")).get("preStop")).get("exec")).get("command"));
    int preStopSeconds = Integer.parseInt(String.valueOf(preStop.getLast()));
    int apiGrace = (Integer) podSpec(api).get("terminationGracePeriodSeconds");
    assertThat((long) apiGrace).isGreaterThan(preStopSeconds + phase.toSeconds());
  }

  @ParameterizedTest
  @ValueSource(strings = {"production"})
  void productionValuesAutoscaleWorkersAndExposeTheApiThroughAnIngress(String values) throws IOException {
    Manifests m = load(values);
    Map<String, Object> hpa = m.ofKind("HorizontalPodAutoscaler").getFirst();
    Map<String, Object> spec = map(hpa.get("spec"));
    assertThat(map(spec.get("scaleTargetRef"))).containsEntry("kind", "Deployment").containsEntry("name", "modelpress-worker");
    assertThat((Integer) spec.get("maxReplicas")).isGreaterThan((Integer) spec.get("minReplicas"));
    // The HPA owns the worker count; the Deployment must not fight it with a fixed replicas field.
    assertThat(map(m.named("Deployment", "modelpress-worker").get("spec"))).doesNotContainKey("replicas");
    assertThat(map(m.named("Deployment", "modelpress-api").get("spec"))).containsEntry("replicas", 3);

    Map<String, Object> ingress = m.ofKind("Ingress").getFirst();
    Map<String, Object> rule = list(map(ingress.get("spec")).get("rules")).getFirst();
    Map<String, Object> backend = map(map(list(map(rule.get("http")).get("paths")).getFirst().get("backend")).get("service"));
    assertThat(backend.get("name")).isEqualTo(name(m.ofKind("Service").getFirst()));
    assertThat(map(backend.get("port"))).containsEntry("name", "http");
  }

  // --- parsing helpers ---

  private record Manifests(List<Map<String, Object>> docs) {
    List<Map<String, Object>> ofKind(String kind) {
      return docs.stream().filter(d -> kind.equals(d.get("kind"))).toList();
    }

    Map<String, Object> named(String kind, String name) {
      return ofKind(kind).stream().filter(d -> name.equals(name(d))).findFirst()
          .orElseThrow(() -> new AssertionError("no " + kind + " " + name));
    }
  }

  @SuppressWarnings("unchecked")
  private static Manifests load(String values) throws IOException {
    Path file = RENDERED.resolve(values + ".yaml");
    assumeTrue(Files.exists(file), () -> file + " is missing: run .ci/helm-check (needs npm) to render the chart;"
        + " skipping the Helm manifest checks");
    List<Map<String, Object>> docs = new ArrayList<>();
    try (Reader r = Files.newBufferedReader(file)) {
      for (Object doc : new Yaml().loadAll(r)) {
        if (doc != null) {
          docs.add((Map<String, Object>) doc);
        }
      }
    }
    assertThat(docs).as("documents in %s", file).isNotEmpty();
    return new Manifests(docs);
  }

  private static String name(Map<String, Object> doc) {
    return (String) map(doc.get("metadata")).get("name");
  }

  private static Map<String, Object> podSpec(Map<String, Object> deployment) {
    return map(map(map(deployment.get("spec")).get("template")).get("spec"));
  }

  private static Map<String, Object> podLabels(Map<String, Object> deployment) {
    return map(map(map(map(deployment.get("spec")).get("template")).get("metadata")).get("labels"));
  }

  private static Map<String, Object> container(Map<String, Object> deployment) {
    List<Map<String, Object>> containers = list(podSpec(deployment).get("containers"));
    assertThat(containers).hasSize(1);
    return containers.getFirst();
  }

  private static List<String> envNames(Map<String, Object> deployment) {
    return list(container(deployment).get("env")).stream().map(e -> (String) e.get("name")).toList();
  }

  private static Map<String, Object> env(Map<String, Object> deployment, String name) {
    return list(container(deployment).get("env")).stream().filter(e -> name.equals(e.get("name"))).findFirst()
        .orElseThrow(() -> new AssertionError(name(deployment) + " has no env " + name));
  }

  private static Map<String, Object> secretRef(Map<String, Object> deployment, String name) {
    return map(map(env(deployment, name).get("valueFrom")).get("secretKeyRef"));
  }

  private static List<String> envFromConfigMaps(Map<String, Object> deployment) {
    return list(container(deployment).get("envFrom")).stream()
        .map(e -> map(e.get("configMapRef"))).filter(Objects::nonNull).map(r -> (String) r.get("name")).toList();
  }

  private static String probePath(Map<String, Object> container, String probe) {
    Map<String, Object> get = map(map(container.get(probe)).get("httpGet"));
    assertThat(get.get("port")).isEqualTo("http");
    return (String) get.get("path");
  }

  private static Map<String, Object> data(Map<String, Object> configMap) {
    return map(configMap.get("data"));
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> map(Object o) {
    return (Map<String, Object>) o;
  }

  @SuppressWarnings("unchecked")
  private static List<Map<String, Object>> list(Object o) {
    return (List<Map<String, Object>>) o;
  }

  @SuppressWarnings("unchecked")
  private static List<Object> list2(Object o) {
    return (List<Object>) o;
  }
}
