package dev.modelpress.system;

import java.util.List;
import tools.jackson.databind.DatabindException;

/** Renders a Jackson reference path as {@code steps[1].weights.bits}. */
final class JsonPaths {

  private JsonPaths() {}

  static String of(List<DatabindException.Reference> path) {
    StringBuilder sb = new StringBuilder();
    for (DatabindException.Reference ref : path) {
      if (ref.getPropertyName() != null) {
        if (!sb.isEmpty()) {
          sb.append('.');
        }
        sb.append(ref.getPropertyName());
      } else if (ref.getIndex() >= 0) {
        sb.append('[').append(ref.getIndex()).append(']');
      }
    }
    return sb.isEmpty() ? "$" : sb.toString();
  }
}
