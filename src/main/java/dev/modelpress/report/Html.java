package dev.modelpress.report;

import java.util.Locale;

/** Escaping and number formatting for the report page. Every piece of report data goes through here. */
final class Html {

  private Html() {}

  /**
   * Escapes text for use in element content and in double- or single-quoted attribute values.
   * Report data includes user-chosen names (models, tensors, outputs), so nothing is written raw.
   */
  static String esc(String s) {
    if (s == null) {
      return "";
    }
    StringBuilder out = new StringBuilder(s.length() + 16);
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '&' -> out.append("&amp;");
        case '<' -> out.append("&lt;");
        case '>' -> out.append("&gt;");
        case '"' -> out.append("&quot;");
        case '\'' -> out.append("&#39;");
        default -> {
          // Control characters other than tab/newline are not valid in HTML text.
          if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            out.append('\uFFFD');
          } else {
            out.append(c);
          }
        }
      }
    }
    return out.toString();
  }

  /** A name shortened to {@code max} characters by cutting its start: the end of a tensor path says most. */
  static String shorten(String s, int max) {
    if (s == null || s.length() <= max) {
      return s;
    }
    return "\u2026" + s.substring(s.length() - (max - 1));
  }

  static String bytes(double b) {
    double a = Math.abs(b);
    if (a >= 1 << 30) {
      return fmt(b / (1 << 30), 2) + " GiB";
    }
    if (a >= 1 << 20) {
      return fmt(b / (1 << 20), 2) + " MiB";
    }
    if (a >= 1 << 10) {
      return fmt(b / (1 << 10), 1) + " KiB";
    }
    return fmt(b, 0) + " B";
  }

  static String count(double n) {
    double a = Math.abs(n);
    if (a >= 1e9) {
      return fmt(n / 1e9, 2) + " G";
    }
    if (a >= 1e6) {
      return fmt(n / 1e6, 2) + " M";
    }
    if (a >= 1e4) {
      return fmt(n / 1e3, 1) + " k";
    }
    return fmt(n, 0);
  }

  static String fmt(double v, int decimals) {
    if (Double.isNaN(v)) {
      return "NaN";
    }
    if (Double.isInfinite(v)) {
      return v > 0 ? "\u221E" : "-\u221E";
    }
    return String.format(Locale.ROOT, "%." + decimals + "f", v);
  }

  static String percent(double fraction, int decimals) {
    return fmt(fraction * 100, decimals) + "%";
  }

  /** A coordinate for SVG attributes: fixed decimals, no locale surprises. */
  static String px(double v) {
    return String.format(Locale.ROOT, "%.1f", v);
  }
}
