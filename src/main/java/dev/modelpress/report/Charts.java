package dev.modelpress.report;

import static dev.modelpress.report.Html.esc;
import static dev.modelpress.report.Html.px;

import java.util.List;
import java.util.function.DoubleFunction;

/**
 * Inline SVG charts drawn on the server: horizontal bar charts (one or more series per row),
 * a diverging bar chart around zero and a heat map. Sizes are explicit so the page lays out
 * without scripts; every label is escaped, and a label cut to fit keeps its full text in a
 * {@code <title>} tooltip.
 */
final class Charts {

  /** One series of a bar chart; {@code NaN} values draw no bar. */
  record Series(String name, String color, double[] values) {}

  static final String BEFORE = "#a0aec0";
  static final String AFTER = "#2b6cb0";
  static final String BAD = "#c53030";
  static final String GOOD = "#2f855a";

  private static final int WIDTH = 880;
  private static final int LABEL_WIDTH = 330;
  private static final int VALUE_WIDTH = 90;
  private static final int LABEL_CHARS = 46;
  private static final int BAR = 9;

  private Charts() {}

  /** Horizontal bars from zero (or from the smallest value, when negative) for each label. */
  static String bars(String title, List<String> labels, List<Series> series, DoubleFunction<String> format) {
    double max = 0;
    double min = 0;
    for (Series s : series) {
      for (double v : s.values()) {
        if (Double.isFinite(v)) {
          max = Math.max(max, v);
          min = Math.min(min, v);
        }
      }
    }
    if (max == min) {
      max = min + 1;
    }
    int rowHeight = series.size() * (BAR + 2) + 8;
    int top = 34;
    int height = top + labels.size() * rowHeight + 24;
    double plot = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    StringBuilder svg = open(title, height);
    legend(svg, series, top - 14);
    // Grid and ticks at quarters of the range.
    for (int q = 0; q <= 4; q++) {
      double v = min + (max - min) * q / 4;
      double x = LABEL_WIDTH + plot * q / 4;
      svg.append("<line class=\"grid\" x1=\"").append(px(x)).append("\" y1=\"").append(top - 4)
          .append("\" x2=\"").append(px(x)).append("\" y2=\"").append(height - 20).append("\"/>");
      svg.append("<text class=\"tick\" x=\"").append(px(x)).append("\" y=\"").append(height - 6)
          .append("\" text-anchor=\"middle\">").append(esc(format.apply(v))).append("</text>");
    }
    double zero = LABEL_WIDTH + plot * (0 - min) / (max - min);
    for (int i = 0; i < labels.size(); i++) {
      int y = top + i * rowHeight;
      String label = labels.get(i);
      svg.append("<g class=\"row\"><title>").append(esc(label)).append("</title>");
      svg.append("<text class=\"label\" x=\"").append(LABEL_WIDTH - 8).append("\" y=\"")
          .append(px(y + rowHeight / 2.0)).append("\" text-anchor=\"end\" dominant-baseline=\"middle\">")
          .append(esc(Html.shorten(label, LABEL_CHARS))).append("</text>");
      for (int s = 0; s < series.size(); s++) {
        double v = series.get(s).values()[i];
        double by = y + 4 + s * (BAR + 2);
        if (!Double.isFinite(v)) {
          continue;
        }
        double x = LABEL_WIDTH + plot * (v - min) / (max - min);
        double from = Math.min(x, zero);
        double w = Math.max(1, Math.abs(x - zero));
        svg.append("<rect class=\"bar\" x=\"").append(px(from)).append("\" y=\"").append(px(by))
            .append("\" width=\"").append(px(w)).append("\" height=\"").append(BAR).append("\" fill=\"")
            .append(series.get(s).color()).append("\"><title>").append(esc(label)).append(" \u2014 ")
            .append(esc(series.get(s).name())).append(": ").append(esc(format.apply(v))).append("</title></rect>");
        svg.append("<text class=\"value\" x=\"").append(px(Math.max(x, zero) + 4)).append("\" y=\"")
            .append(px(by + BAR - 1)).append("\">").append(esc(format.apply(v))).append("</text>");
      }
      svg.append("</g>");
    }
    return svg.append("</svg>").toString();
  }

  /** Bars left (red) or right (green) of zero: a gain or loss per label. */
  static String diverging(String title, List<String> labels, double[] values, DoubleFunction<String> format) {
    double span = 0;
    for (double v : values) {
      if (Double.isFinite(v)) {
        span = Math.max(span, Math.abs(v));
      }
    }
    if (span == 0) {
      span = 1;
    }
    int rowHeight = 18;
    int top = 16;
    int height = top + labels.size() * rowHeight + 24;
    double plot = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    double zero = LABEL_WIDTH + plot / 2;
    StringBuilder svg = open(title, height);
    for (int q = 0; q <= 4; q++) {
      double x = LABEL_WIDTH + plot * q / 4;
      svg.append("<line class=\"").append(q == 2 ? "axis" : "grid").append("\" x1=\"").append(px(x))
          .append("\" y1=\"").append(top - 4).append("\" x2=\"").append(px(x)).append("\" y2=\"")
          .append(height - 20).append("\"/>");
      svg.append("<text class=\"tick\" x=\"").append(px(x)).append("\" y=\"").append(height - 6)
          .append("\" text-anchor=\"middle\">").append(esc(format.apply(-span + span * q / 2))).append("</text>");
    }
    for (int i = 0; i < labels.size(); i++) {
      double v = values[i];
      int y = top + i * rowHeight;
      svg.append("<g class=\"row\"><text class=\"label\" x=\"").append(LABEL_WIDTH - 8).append("\" y=\"")
          .append(px(y + rowHeight / 2.0)).append("\" text-anchor=\"end\" dominant-baseline=\"middle\">")
          .append(esc(Html.shorten(labels.get(i), LABEL_CHARS))).append("</text>");
      if (Double.isFinite(v)) {
        double x = zero + (plot / 2) * v / span;
        svg.append("<rect class=\"bar\" x=\"").append(px(Math.min(x, zero))).append("\" y=\"").append(y + 3)
            .append("\" width=\"").append(px(Math.max(1, Math.abs(x - zero)))).append("\" height=\"")
            .append(rowHeight - 6).append("\" fill=\"").append(v < 0 ? BAD : GOOD).append("\"><title>")
            .append(esc(labels.get(i))).append(": ").append(esc(format.apply(v))).append("</title></rect>");
        svg.append("<text class=\"value\" x=\"").append(px(Math.max(x, zero) + 4)).append("\" y=\"")
            .append(px(y + rowHeight / 2.0)).append("\" dominant-baseline=\"middle\">").append(esc(format.apply(v)))
            .append("</text>");
      }
      svg.append("</g>");
    }
    return svg.append("</svg>").toString();
  }

  /**
   * A square matrix of signed counts (rows = true class, columns = predicted class): blue where
   * the candidate predicts a cell more often than the original, red where less often.
   */
  static String heatmap(String title, List<String> labels, long[][] delta) {
    int k = labels.size();
    int cell = Math.max(8, Math.min(40, 560 / Math.max(1, k)));
    int left = 130;
    int top = 40;
    int width = left + k * cell + 20;
    int height = top + k * cell + 30;
    long span = 1;
    for (long[] row : delta) {
      for (long v : row) {
        span = Math.max(span, Math.abs(v));
      }
    }
    StringBuilder svg = new StringBuilder();
    svg.append("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart heatmap\" role=\"img\" width=\"").append(width)
        .append("\" height=\"").append(height).append("\" viewBox=\"0 0 ").append(width).append(' ').append(height)
        .append("\" aria-label=\"").append(esc(title)).append("\"><title>").append(esc(title)).append("</title>");
    svg.append("<text class=\"tick\" x=\"").append(left + k * cell / 2).append("\" y=\"12\" text-anchor=\"middle\">")
        .append("predicted class \u2192</text>");
    svg.append("<text class=\"tick\" x=\"4\" y=\"").append(top - 6).append("\">true class \u2193</text>");
    for (int j = 0; j < k; j++) {
      if (cell >= 14) {
        svg.append("<text class=\"tick\" x=\"").append(px(left + j * cell + cell / 2.0)).append("\" y=\"")
            .append(top - 6).append("\" text-anchor=\"middle\">").append(esc(Html.shorten(labels.get(j), 5)))
            .append("</text>");
      }
    }
    for (int i = 0; i < k; i++) {
      svg.append("<text class=\"tick\" x=\"").append(left - 6).append("\" y=\"").append(px(top + i * cell + cell / 2.0))
          .append("\" text-anchor=\"end\" dominant-baseline=\"middle\">").append(esc(Html.shorten(labels.get(i), 16)))
          .append("</text>");
      for (int j = 0; j < k; j++) {
        long v = delta[i][j];
        double strength = Math.sqrt(Math.abs(v) / (double) span);
        String fill = v == 0 ? "#f7fafc" : v > 0 ? rgba(43, 108, 176, 0.15 + 0.85 * strength)
            : rgba(197, 48, 48, 0.15 + 0.85 * strength);
        svg.append("<rect class=\"cell\" x=\"").append(left + j * cell).append("\" y=\"").append(top + i * cell)
            .append("\" width=\"").append(cell - 1).append("\" height=\"").append(cell - 1).append("\" fill=\"")
            .append(fill).append("\"><title>true ").append(esc(labels.get(i))).append(", predicted ")
            .append(esc(labels.get(j))).append(": ").append(v > 0 ? "+" : "").append(v).append("</title></rect>");
        if (cell >= 22 && v != 0) {
          svg.append("<text class=\"cellvalue\" x=\"").append(px(left + j * cell + cell / 2.0)).append("\" y=\"")
              .append(px(top + i * cell + cell / 2.0)).append("\" text-anchor=\"middle\" dominant-baseline=\"middle\"")
              .append(strength > 0.6 ? " fill=\"#fff\"" : "").append('>').append(v > 0 ? "+" : "").append(v)
              .append("</text>");
        }
      }
    }
    return svg.append("</svg>").toString();
  }

  private static String rgba(int r, int g, int b, double a) {
    return "rgba(" + r + "," + g + "," + b + "," + Html.fmt(Math.min(1, a), 2) + ")";
  }

  private static StringBuilder open(String title, int height) {
    StringBuilder svg = new StringBuilder();
    svg.append("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" width=\"").append(WIDTH)
        .append("\" height=\"").append(height).append("\" viewBox=\"0 0 ").append(WIDTH).append(' ').append(height)
        .append("\" aria-label=\"").append(esc(title)).append("\"><title>").append(esc(title)).append("</title>");
    return svg;
  }

  private static void legend(StringBuilder svg, List<Series> series, int y) {
    int x = LABEL_WIDTH;
    for (Series s : series) {
      svg.append("<rect x=\"").append(x).append("\" y=\"").append(y - 9).append("\" width=\"12\" height=\"10\" fill=\"")
          .append(s.color()).append("\"/><text class=\"legend\" x=\"").append(x + 16).append("\" y=\"").append(y)
          .append("\">").append(esc(s.name())).append("</text>");
      x += 24 + 7 * s.name().length();
    }
  }
}
