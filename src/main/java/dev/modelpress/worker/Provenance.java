package dev.modelpress.worker;

import java.util.LinkedHashMap;
import java.util.Map;

/** Versions that produced an artifact, recorded in every report. */
final class Provenance {

  private Provenance() {}

  static Map<String, String> describe() {
    Map<String, String> p = new LinkedHashMap<>();
    p.put("service", version(Provenance.class.getPackage()));
    p.put("onnxruntime", version(ai.onnxruntime.OrtEnvironment.class.getPackage()));
    p.put("protobuf", version(com.google.protobuf.Message.class.getPackage()));
    p.put("java", System.getProperty("java.version"));
    return p;
  }

  private static String version(Package pkg) {
    String v = pkg == null ? null : pkg.getImplementationVersion();
    return v == null ? "dev" : v;
  }
}
