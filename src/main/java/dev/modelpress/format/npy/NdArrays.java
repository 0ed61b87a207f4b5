package dev.modelpress.format.npy;

/** Message helpers shared by the readers and writers of this package. */
final class NdArrays {

  private static final int MAX_IN_MESSAGE = 200;

  private NdArrays() {}

  /** Quotes a name for a message, shortened so a hostile long name stays readable. */
  static String quote(String name) {
    return "'" + abbreviate(name) + "'";
  }

  static String abbreviate(String s) {
    return s.length() <= MAX_IN_MESSAGE ? s : s.substring(0, MAX_IN_MESSAGE) + "...";
  }

  /** A shape as Python writes a tuple: {@code ()}, {@code (3,)}, {@code (3, 4)}. */
  static String shapeString(long[] shape) {
    StringBuilder b = new StringBuilder("(");
    for (int i = 0; i < shape.length; i++) {
      if (i > 0) {
        b.append(", ");
      }
      b.append(shape[i]);
    }
    if (shape.length == 1) {
      b.append(',');
    }
    return b.append(')').toString();
  }

  /**
   * Whether a name is safe as an npz entry: not empty, no path separators, no {@code ..}, no
   * control characters, so it can never be taken for a path.
   */
  static boolean isSafeName(String name) {
    if (name.isEmpty() || name.contains("/") || name.contains("\\") || name.contains("..")) {
      return false;
    }
    for (int i = 0; i < name.length(); i++) {
      if (Character.isISOControl(name.charAt(i))) {
        return false;
      }
    }
    return true;
  }
}
