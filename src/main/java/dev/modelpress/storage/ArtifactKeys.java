package dev.modelpress.storage;

/**
 * The rules for object keys, shared by every {@link ArtifactStore} so that switching stores never
 * changes which keys are accepted.
 *
 * <p>A key is a relative path such as {@code models/<uuid>/model.onnx}: at most {@value
 * #MAX_LENGTH} characters, segments separated by {@code /}, no empty segment (so no leading or
 * trailing {@code /} and no {@code //}), no backslash, no control character, and no segment that
 * starts with {@code .} (which rules out {@code .} and {@code ..}). Stores keep their own
 * bookkeeping (temporary files, digest sidecars, staged uploads) under dot-names, so no key can
 * collide with it.
 */
public final class ArtifactKeys {

  /** The longest key accepted, in characters. */
  public static final int MAX_LENGTH = 512;

  private ArtifactKeys() {}

  /**
   * Returns {@code key} if it is a valid key.
   *
   * @throws IllegalArgumentException naming the rule the key breaks
   */
  public static String requireValid(String key) {
    String problem = problem(key);
    if (problem != null) {
      throw new IllegalArgumentException(
          "Invalid artifact key '" + printable(key) + "': " + problem);
    }
    return key;
  }

  /** Whether {@code key} is a valid key. */
  public static boolean isValid(String key) {
    return problem(key) == null;
  }

  /**
   * Returns {@code prefix} if it is a valid listing prefix: empty, a valid key, or a valid key
   * followed by {@code /}. A prefix matches keys by plain string comparison, as in S3, so {@code
   * models/1} matches {@code models/12/x} too; end it with {@code /} to mean a folder.
   *
   * @throws IllegalArgumentException naming the rule the prefix breaks
   */
  public static String requireValidPrefix(String prefix) {
    if (prefix == null) {
      throw new IllegalArgumentException("Invalid artifact key prefix: null");
    }
    if (prefix.isEmpty()) {
      return prefix;
    }
    String body = prefix.endsWith("/") ? prefix.substring(0, prefix.length() - 1) : prefix;
    String problem = problem(body);
    if (problem != null) {
      throw new IllegalArgumentException(
          "Invalid artifact key prefix '" + printable(prefix) + "': " + problem);
    }
    return prefix;
  }

  private static String problem(String key) {
    if (key == null) {
      return "null";
    }
    if (key.isEmpty()) {
      return "empty";
    }
    if (key.length() > MAX_LENGTH) {
      return "longer than " + MAX_LENGTH + " characters";
    }
    if (key.startsWith("/")) {
      return "must be relative (no leading '/')";
    }
    if (key.endsWith("/")) {
      return "must not end with '/'";
    }
    for (int i = 0; i < key.length(); i++) {
      char c = key.charAt(i);
      if (c == '\\') {
        return "contains a backslash";
      }
      if (Character.isISOControl(c)) {
        return "contains a control character at index " + i;
      }
    }
    for (String segment : key.split("/", -1)) {
      if (segment.isEmpty()) {
        return "contains an empty segment ('//')";
      }
      if (segment.startsWith(".")) {
        return "segment '" + segment + "' starts with '.'";
      }
    }
    return null;
  }

  // Keys end up in exception messages and logs; never echo raw control characters there.
  private static String printable(String key) {
    if (key == null) {
      return "null";
    }
    StringBuilder out = new StringBuilder(Math.min(key.length(), 80));
    for (int i = 0; i < key.length() && i < 80; i++) {
      char c = key.charAt(i);
      out.append(Character.isISOControl(c) ? '?' : c);
    }
    return key.length() > 80 ? out + "..." : out.toString();
  }
}
