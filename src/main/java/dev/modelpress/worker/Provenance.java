package dev.modelpress.worker;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import tools.jackson.databind.JsonNode;

/**
 * What produced an artifact, recorded in every report: the versions of the service and of the
 * libraries whose arithmetic shapes the output, and (with {@link #inputs}) the digests of what went
 * in, so a job can be re-run and its {@code model.onnx} compared byte for byte.
 */
final class Provenance {

  private Provenance() {}

  /** Versions of the service and the libraries that compute or write the artifact. */
  static Map<String, String> describe() {
    Map<String, String> p = new LinkedHashMap<>();
    p.put("service", version(Provenance.class, "dev.modelpress", "modelpress"));
    p.put("onnxruntime", version(ai.onnxruntime.OrtEnvironment.class, "com.microsoft.onnxruntime", "onnxruntime"));
    p.put("nd4j", version(org.nd4j.linalg.factory.Nd4j.class, "org.nd4j", "nd4j-api"));
    p.put("protobuf", version(com.google.protobuf.Message.class, "com.google.protobuf", "protobuf-java"));
    p.put("java", System.getProperty("java.version"));
    p.put("javaVendor", System.getProperty("java.vendor"));
    p.put("os", System.getProperty("os.name") + " " + System.getProperty("os.arch"));
    return p;
  }

  /**
   * Seeds found in the steps: every field named {@code seed}, by its path ({@code steps[1].seed}).
   * Empty when no step draws random numbers (pruning by magnitude and round-to-nearest
   * quantization are deterministic).
   */
  static Map<String, JsonNode> seeds(JsonNode steps) {
    Map<String, JsonNode> seeds = new LinkedHashMap<>();
    collectSeeds(steps, "steps", seeds);
    return seeds;
  }

  private static void collectSeeds(JsonNode node, String path, Map<String, JsonNode> out) {
    if (node == null) {
      return;
    }
    if (node.isArray()) {
      for (int i = 0; i < node.size(); i++) {
        collectSeeds(node.get(i), path + "[" + i + "]", out);
      }
    } else if (node.isObject()) {
      for (String name : node.propertyNames()) {
        JsonNode child = node.get(name);
        if (name.equals("seed") && child.isValueNode()) {
          out.put(path + ".seed", child);
        } else {
          collectSeeds(child, path + "." + name, out);
        }
      }
    }
  }

  static String sha256(String text) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The SHA-256 of a file, read in chunks. */
  static String sha256(java.nio.file.Path file) throws IOException {
    try (InputStream in = java.nio.file.Files.newInputStream(file)) {
      MessageDigest digest = MessageDigest.getInstance("SHA-256");
      byte[] buffer = new byte[1 << 16];
      for (int n; (n = in.read(buffer)) > 0; ) {
        digest.update(buffer, 0, n);
      }
      return HexFormat.of().formatHex(digest.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * A library's version, from its own jar: the manifest's {@code Implementation-Version}, else its
   * OSGi {@code Bundle-Version} (protobuf has only that), else its Maven {@code pom.properties};
   * {@code dev} for classes not loaded from a built jar.
   */
  static String version(Class<?> type, String groupId, String artifactId) {
    Package pkg = type.getPackage();
    String v = pkg == null ? null : pkg.getImplementationVersion();
    if (v == null) {
      java.util.jar.Manifest manifest = ownJarEntry(type, "META-INF/MANIFEST.MF", in -> new java.util.jar.Manifest(in));
      v = manifest == null ? null : manifest.getMainAttributes().getValue("Bundle-Version");
    }
    if (v == null) {
      Properties pom = ownJarEntry(type, "META-INF/maven/" + groupId + "/" + artifactId + "/pom.properties", in -> {
        Properties p = new Properties();
        p.load(in);
        return p;
      });
      v = pom == null ? null : pom.getProperty("version");
    }
    return v == null ? "dev" : v;
  }

  private interface Reader<T> {
    T read(InputStream in) throws IOException;
  }

  /**
   * An entry of the jar the class was loaded from. Looked up there rather than on the class path:
   * other jars (shaded copies) may carry the same path for another version, and would come first.
   */
  private static <T> T ownJarEntry(Class<?> type, String entry, Reader<T> reader) {
    java.net.URL self = type.getResource(type.getSimpleName() + ".class");
    if (self == null || !"jar".equals(self.getProtocol())) {
      return null;
    }
    String url = self.toString();
    try (InputStream in = java.net.URI.create(url.substring(0, url.indexOf("!/") + 2) + entry).toURL().openStream()) {
      return reader.read(in);
    } catch (IOException | IllegalArgumentException e) {
      return null;
    }
  }
}
