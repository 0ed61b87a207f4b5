package dev.modelpress.deploy;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.Reader;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.boot.env.YamlPropertySourceLoader;
import org.springframework.core.env.EnumerablePropertySource;
import org.springframework.core.io.ClassPathResource;
import org.yaml.snakeyaml.Yaml;

/**
 * There is no Docker engine on the build machines, so {@code docker-compose.yml} and the
 * {@code Dockerfile} are checked here against the application they deploy: every variable the
 * compose file sets must reach a real configuration property (a typo would otherwise be ignored
 * silently and the service would start on its embedded defaults), every service has a health
 * check, and ports, probe paths and JVM flags agree with {@code application.yml} and the build.
 */
class ComposeAndDockerfileTest {

  private static ConfigurationBinding binding;
  private static Map<String, Object> compose;
  private static List<String> dockerfile;
  private static Map<String, Object> applicationYml;

  @BeforeAll
  @SuppressWarnings("unchecked")
  static void load() throws IOException {
    binding = ConfigurationBinding.load();
    try (Reader r = Files.newBufferedReader(Path.of("docker-compose.yml"))) {
      compose = new Yaml().load(r);
    }
    dockerfile = joinContinuations(Files.readAllLines(Path.of("Dockerfile")));
    applicationYml = new LinkedHashMap<>();
    for (var source : new YamlPropertySourceLoader().load("application", new ClassPathResource("application.yml"))) {
      EnumerablePropertySource<?> enumerable = (EnumerablePropertySource<?>) source;
      for (String name : enumerable.getPropertyNames()) {
        applicationYml.put(name, enumerable.getProperty(name));
      }
    }
  }

  @Test
  void findsTheApplicationsConfigurationRecords() {
    assertThat(binding.targets()).extracting(ConfigurationBinding.Target::prefix)
        .contains("modelpress.storage", "modelpress.worker", "modelpress.jobs", "modelpress.uploads");
  }

  @Test
  void bindingCatchesAMisspelledVariable() {
    // The check below is only worth something if it can fail.
    assertThat(binding.bindingsOfEnvironmentVariable("MODELPRESS_STORAGE_S3_ACCES_KEY", "x")).isZero();
    assertThat(binding.bindingsOfEnvironmentVariable("MODELPRESS_WORKER_CONCURENCY", "2")).isZero();
    assertThat(binding.isKnownSpringVariable("SPRING_DATASOURCE_URI")).isFalse();
    assertThat(binding.bindingsOfEnvironmentVariable("MODELPRESS_STORAGE_S3_ACCESS_KEY", "x")).isEqualTo(1);
  }

  @Test
  void everyServiceVariableBindsToARealProperty() {
    for (String service : List.of("modelpress", "worker")) {
      Map<String, Object> env = environment(service);
      assertThat(env).as(service).isNotEmpty();
      for (var e : env.entrySet()) {
        String name = e.getKey();
        String value = String.valueOf(e.getValue());
        if (name.startsWith("MODELPRESS_")) {
          assertThat(binding.bindingsOfEnvironmentVariable(name, value))
              .as("%s in service %s binds to no modelpress configuration property", name, service)
              .isEqualTo(1);
        } else if (name.startsWith("SPRING_")) {
          assertThat(binding.isKnownSpringVariable(name))
              .as("%s in service %s names no Spring Boot property", name, service).isTrue();
        }
      }
    }
  }

  @Test
  void everyModelpressKeyOfApplicationYmlBindsToARealProperty() {
    List<String> unbound = new ArrayList<>();
    applicationYml.forEach((name, value) -> {
      if (name.startsWith("modelpress.") && binding.bindingsOfProperty(name, String.valueOf(value)) != 1) {
        unbound.add(name);
      }
    });
    assertThat(unbound).as("application.yml keys that configure nothing").isEmpty();
  }

  @Test
  void composeWiresTheServiceToPostgresAndMinioWithMatchingCredentials() {
    Map<String, Object> app = environment("modelpress");
    Map<String, Object> pg = environment("postgres");
    Map<String, Object> minio = environment("minio");

    URI jdbc = URI.create(((String) app.get("SPRING_DATASOURCE_URL")).substring("jdbc:".length()));
    assertThat(service(jdbc.getHost())).as("datasource host is a compose service").isNotNull();
    assertThat(jdbc.getHost()).isEqualTo("postgres");
    assertThat(jdbc.getPort()).isEqualTo(5432);
    assertThat(jdbc.getPath()).isEqualTo("/" + pg.get("POSTGRES_DB"));
    assertThat(app.get("SPRING_DATASOURCE_USERNAME")).isEqualTo(pg.get("POSTGRES_USER"));
    assertThat(app.get("SPRING_DATASOURCE_PASSWORD")).isEqualTo(pg.get("POSTGRES_PASSWORD"));

    assertThat(app.get("MODELPRESS_STORAGE_TYPE")).isEqualTo("s3");
    URI s3 = URI.create((String) app.get("MODELPRESS_STORAGE_S3_ENDPOINT"));
    assertThat(s3.getHost()).isEqualTo("minio");
    assertThat(s3.getPort()).isEqualTo(9000);
    assertThat(app.get("MODELPRESS_STORAGE_S3_ACCESS_KEY")).isEqualTo(minio.get("MINIO_ROOT_USER"));
    assertThat(app.get("MODELPRESS_STORAGE_S3_SECRET_KEY")).isEqualTo(minio.get("MINIO_ROOT_PASSWORD"));
    // The bucket is created by the service itself at start.
    assertThat(app.get("MODELPRESS_STORAGE_S3_CREATE_BUCKET")).isEqualTo("true");
    assertThat((String) app.get("MODELPRESS_STORAGE_S3_BUCKET")).isNotBlank();

    // Scale-out workers share the API's database and bucket and run workers.
    Map<String, Object> worker = environment("worker");
    for (String shared : List.of("SPRING_DATASOURCE_URL", "SPRING_DATASOURCE_USERNAME", "MODELPRESS_STORAGE_S3_BUCKET",
        "MODELPRESS_STORAGE_S3_ENDPOINT", "MODELPRESS_STORAGE_TYPE")) {
      assertThat(worker.get(shared)).as(shared).isEqualTo(app.get(shared));
    }
    assertThat(worker.get("MODELPRESS_WORKER_ENABLED")).isEqualTo("true");
  }

  @Test
  @SuppressWarnings("unchecked")
  void everyServiceHasAHealthCheckAndDependentsWaitForIt() {
    Map<String, Object> services = (Map<String, Object>) compose.get("services");
    assertThat(services).containsKeys("postgres", "minio", "modelpress", "worker");
    services.forEach((name, s) -> {
      Map<String, Object> healthcheck = (Map<String, Object>) ((Map<String, Object>) s).get("healthcheck");
      assertThat(healthcheck).as("healthcheck of %s", name).isNotNull();
      assertThat(healthcheck.get("test")).as("healthcheck test of %s", name).isNotNull();
      Object dependsOn = ((Map<String, Object>) s).get("depends_on");
      if (dependsOn != null) {
        ((Map<String, Object>) dependsOn).forEach((dep, condition) -> assertThat(
            ((Map<String, Object>) condition).get("condition")).as("%s waits for %s", name, dep)
            .isEqualTo("service_healthy"));
      }
    });
    assertThat(((Map<String, Object>) service("modelpress").get("depends_on"))).containsKeys("postgres", "minio");
  }

  @Test
  @SuppressWarnings("unchecked")
  void portsAndProbePathsAgreeWithTheApplication() {
    int serverPort = Integer.parseInt(String.valueOf(applicationYml.getOrDefault("server.port", "8080")));
    assertThat(applicationYml).doesNotContainKeys("management.server.port", "management.endpoints.web.base-path");
    assertThat(applicationYml.get("management.endpoint.health.probes.enabled")).isEqualTo(true);

    assertThat(instructions("EXPOSE")).containsExactly(String.valueOf(serverPort));
    String healthcheck = instructions("HEALTHCHECK").getFirst();
    Matcher url = Pattern.compile("http://127\\.0\\.0\\.1:(\\d+)(/\\S+)").matcher(healthcheck);
    assertThat(url.find()).as(healthcheck).isTrue();
    assertThat(Integer.parseInt(url.group(1))).isEqualTo(serverPort);
    assertThat(url.group(2)).isIn("/actuator/health/readiness", "/actuator/health/liveness");
    // The runtime image must have the tool the health check runs (the JRE image has no curl).
    if (healthcheck.contains("curl")) {
      assertThat(runtimeStage()).anyMatch(l -> l.startsWith("RUN ") && l.matches(".*apt-get install.*\\bcurl\\b.*"));
    }

    List<String> ports = (List<String>) service("modelpress").get("ports");
    assertThat(ports).contains(serverPort + ":" + serverPort);
    String composeCheck = String.join(" ", (List<String>) ((Map<String, Object>) service("modelpress").get("healthcheck")).get("test"));
    assertThat(composeCheck).contains("http://127.0.0.1:" + serverPort + url.group(2));
  }

  @Test
  void runtimeImageRunsAsNonRootWithTheBuildsJvmFlagsAndAContainerSizedHeap() throws IOException {
    List<String> runtime = runtimeStage();
    assertThat(runtime.getFirst()).matches("FROM eclipse-temurin:25-jre\\b.*");
    String user = runtime.stream().filter(l -> l.startsWith("USER ")).reduce((a, b) -> b).orElseThrow();
    assertThat(user.substring(5).split(":")[0]).isNotIn("root", "0");

    String pom = Files.readString(Path.of("pom.xml"));
    Matcher flags = Pattern.compile("<jvm.flags>([^<]+)</jvm.flags>").matcher(pom);
    assertThat(flags.find()).isTrue();
    String env = runtime.stream().filter(l -> l.startsWith("ENV JDK_JAVA_OPTIONS=")).findFirst().orElseThrow();
    assertThat(Arrays.asList(env.substring(env.indexOf('"') + 1, env.lastIndexOf('"')).split(" ")))
        .containsAll(Arrays.asList(flags.group(1).trim().split("\\s+")))
        .anyMatch(f -> f.startsWith("-XX:MaxRAMPercentage="));

    // Layered jar: extracted by Boot's tools jar mode, copied layer by layer, started by its launcher.
    assertThat(dockerfile).anyMatch(l -> l.contains("-Djarmode=tools") && l.contains("extract --layers --launcher"));
    assertThat(runtime.stream().filter(l -> l.startsWith("COPY --from=build /layers/")).toList()).hasSize(4);
    assertThat(runtime.getLast()).contains("org.springframework.boot.loader.launch.JarLauncher").startsWith("ENTRYPOINT [");
    // The wrapper builds it, and the build stage is a JDK 25.
    assertThat(dockerfile).anyMatch(l -> l.matches("FROM eclipse-temurin:25-jdk AS build"))
        .anyMatch(l -> l.startsWith("RUN") && l.contains("./mvnw") && l.contains("package"));
  }

  private static List<String> runtimeStage() {
    int last = 0;
    for (int i = 0; i < dockerfile.size(); i++) {
      if (dockerfile.get(i).startsWith("FROM ")) {
        last = i;
      }
    }
    return dockerfile.subList(last, dockerfile.size());
  }

  private static List<String> instructions(String keyword) {
    return dockerfile.stream().filter(l -> l.startsWith(keyword + " "))
        .map(l -> l.substring(keyword.length() + 1).trim()).toList();
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> service(String name) {
    return (Map<String, Object>) ((Map<String, Object>) compose.get("services")).get(name);
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> environment(String service) {
    Map<String, Object> env = (Map<String, Object>) service(service).get("environment");
    Map<String, Object> asStrings = new LinkedHashMap<>();
    env.forEach((k, v) -> asStrings.put(k, String.valueOf(v)));
    return asStrings;
  }

  /** Dockerfile instructions with {@code \} continuations joined and comments dropped. */
  private static List<String> joinContinuations(List<String> lines) {
    List<String> out = new ArrayList<>();
    StringBuilder current = new StringBuilder();
    for (String raw : lines) {
      String line = raw.strip();
      if (line.startsWith("#") || (line.isEmpty() && current.isEmpty())) {
        continue;
      }
      if (line.endsWith("\\")) {
        current.append(line, 0, line.length() - 1).append(' ');
        continue;
      }
      current.append(line);
      out.add(current.toString().replaceAll("\\s+", " ").trim());
      current.setLength(0);
    }
    return out;
  }
}
