package dev.modelpress.deploy;

import dev.modelpress.ModelpressApplication;
import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import org.springframework.beans.factory.config.BeanDefinition;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.AbstractBindHandler;
import org.springframework.boot.context.properties.bind.BindContext;
import org.springframework.boot.context.properties.bind.BindHandler;
import org.springframework.boot.context.properties.bind.Bindable;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.context.properties.source.ConfigurationPropertyName;
import org.springframework.boot.context.properties.source.ConfigurationPropertySource;
import org.springframework.boot.context.properties.source.ConfigurationPropertySources;
import org.springframework.boot.context.properties.source.MapConfigurationPropertySource;
import org.springframework.context.annotation.ClassPathScanningCandidateComponentProvider;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.env.SystemEnvironmentPropertySource;
import org.springframework.core.type.filter.AnnotationTypeFilter;
import org.springframework.util.ClassUtils;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Answers "does this setting reach the application?" the way Spring Boot itself would: our own
 * {@code modelpress.*} settings are bound with Spring's {@link Binder} onto every
 * {@code @ConfigurationProperties} record of the application (so a typo, a renamed field or a value
 * that does not convert is caught); {@code spring.*} settings are looked up in the configuration
 * metadata that Spring Boot's jars publish.
 */
final class ConfigurationBinding {

  /** A {@code @ConfigurationProperties} type of the application and its prefix. */
  record Target(String prefix, Class<?> type) {}

  private final List<Target> targets;
  private final Set<String> springProperties;

  private ConfigurationBinding(List<Target> targets, Set<String> springProperties) {
    this.targets = targets;
    this.springProperties = springProperties;
  }

  static ConfigurationBinding load() throws IOException {
    return new ConfigurationBinding(applicationTargets(), bootMetadataProperties());
  }

  List<Target> targets() {
    return targets;
  }

  /**
   * How many leaf properties of the application's records an environment variable binds to;
   * 0 means the variable is silently ignored by the application. Throws Spring's
   * {@code BindException} when it binds but its value does not convert.
   */
  int bindingsOfEnvironmentVariable(String name, String value) {
    // Boot applies its environment-variable name mapping only to a source with this name.
    var environment = new SystemEnvironmentPropertySource(
        StandardEnvironment.SYSTEM_ENVIRONMENT_PROPERTY_SOURCE_NAME, Map.of(name, value));
    return bindings(ConfigurationPropertySources.from(environment).iterator().next());
  }

  /** Same for a property given by its canonical name, e.g. {@code modelpress.worker.lease}. */
  int bindingsOfProperty(String name, Object value) {
    return bindings(new MapConfigurationPropertySource(Map.of(name, value)));
  }

  /**
   * Whether Spring Boot declares a {@code spring.*} property that this environment variable
   * names, with the relaxed rules Boot applies to the environment ({@code SPRING_DATASOURCE_URL}
   * for {@code spring.datasource.url}; dashes dropped or written as underscores).
   */
  boolean isKnownSpringVariable(String name) {
    String wanted = name.toUpperCase(Locale.ROOT);
    for (String property : springProperties) {
      String upper = property.toUpperCase(Locale.ROOT).replace('.', '_');
      if (upper.replace("-", "").equals(wanted) || upper.replace('-', '_').equals(wanted)) {
        return true;
      }
    }
    return false;
  }

  private int bindings(ConfigurationPropertySource source) {
    Binder binder = new Binder(source);
    AtomicInteger bound = new AtomicInteger();
    BindHandler counting = new AbstractBindHandler() {
      @Override
      public Object onSuccess(ConfigurationPropertyName name, Bindable<?> target, BindContext context, Object result) {
        if (context.getConfigurationProperty() != null) {
          bound.incrementAndGet();
        }
        return super.onSuccess(name, target, context, result);
      }
    };
    for (Target t : targets) {
      binder.bind(t.prefix(), Bindable.of(t.type()), counting);
    }
    return bound.get();
  }

  private static List<Target> applicationTargets() {
    var scanner = new ClassPathScanningCandidateComponentProvider(false);
    scanner.addIncludeFilter(new AnnotationTypeFilter(ConfigurationProperties.class));
    List<Target> found = new ArrayList<>();
    String root = ModelpressApplication.class.getPackageName();
    for (BeanDefinition candidate : scanner.findCandidateComponents(root)) {
      Class<?> type = ClassUtils.resolveClassName(candidate.getBeanClassName(), null);
      ConfigurationProperties annotation = type.getAnnotation(ConfigurationProperties.class);
      String prefix = annotation.prefix().isEmpty() ? annotation.value() : annotation.prefix();
      found.add(new Target(prefix, type));
    }
    return found;
  }

  private static Set<String> bootMetadataProperties() throws IOException {
    Set<String> names = new HashSet<>();
    JsonMapper json = JsonMapper.builder().build();
    ClassLoader loader = ConfigurationBinding.class.getClassLoader();
    for (String resource : List.of("META-INF/spring-configuration-metadata.json",
        "META-INF/additional-spring-configuration-metadata.json")) {
      Enumeration<URL> urls = loader.getResources(resource);
      while (urls.hasMoreElements()) {
        try (InputStream in = urls.nextElement().openStream()) {
          JsonNode properties = json.readTree(in).get("properties");
          if (properties != null) {
            properties.forEach(p -> names.add(p.get("name").asString()));
          }
        }
      }
    }
    return names;
  }
}
