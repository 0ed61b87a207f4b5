package dev.modelpress.model;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.format.safetensors.SafetensorsFile;
import dev.modelpress.system.ApiProblem;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Decides what a file is and validates it. Detection: a safetensors file starts with a
 * little-endian header length followed by {@code {}; an ONNX file is a protobuf {@code ModelProto}
 * whose first field is almost always {@code ir_version} (tag byte {@code 0x08}).
 */
final class ModelInspector {

  private ModelInspector() {}

  static ModelSummary inspect(Path file, String declaredFormat, String fileName) throws IOException {
    long size = Files.size(file);
    byte[] head = new byte[9];
    int read;
    try (InputStream in = Files.newInputStream(file)) {
      read = in.readNBytes(head, 0, head.length);
    }
    String format = declaredFormat;
    boolean claimed = format != null;
    if (format == null) {
      if (looksLikeSafetensors(head, read, size)) {
        format = "safetensors";
        claimed = true;
      } else {
        format = "onnx";
        claimed = (read > 0 && head[0] == 0x08) || (fileName != null && fileName.toLowerCase().endsWith(".onnx"));
      }
    }
    try {
      return switch (format) {
        case "onnx" -> OnnxModels.summarize(OnnxModels.read(file));
        case "safetensors" -> {
          try (SafetensorsFile st = SafetensorsFile.open(file)) {
            yield st.summary();
          }
        }
        default -> throw new ApiProblem(ApiProblem.Kind.INVALID_PARAMETER,
            "format must be onnx or safetensors, not '" + format + "'");
      };
    } catch (FormatException e) {
      if (!claimed) {
        throw new ApiProblem(ApiProblem.Kind.UNSUPPORTED_FORMAT,
            "the file is neither a safetensors file (no JSON header) nor an ONNX model (" + e.getMessage() + ")");
      }
      throw new ApiProblem(ApiProblem.Kind.INVALID_MODEL, format + ": " + e.getMessage());
    }
  }

  private static boolean looksLikeSafetensors(byte[] head, int read, long size) {
    if (read < 9) {
      return false;
    }
    long headerLength = ByteBuffer.wrap(head, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    return head[8] == '{' && headerLength > 1;
  }
}
