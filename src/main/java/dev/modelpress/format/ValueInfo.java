package dev.modelpress.format;

import java.util.List;

/**
 * A graph input or output.
 *
 * @param name its name
 * @param elementType element type ({@code FLOAT}, {@code INT64}, …)
 * @param shape dimensions as strings: a number for a fixed size, a symbol ({@code batch}) or
 *     {@code ?} for a dynamic one
 */
public record ValueInfo(String name, String elementType, List<String> shape) {

  public ValueInfo {
    shape = List.copyOf(shape);
  }
}
