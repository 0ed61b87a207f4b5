package dev.modelpress.training;

import dev.modelpress.compression.CompressionException;
import dev.modelpress.evaluation.ActivationCollector;
import dev.modelpress.evaluation.EvaluationException;
import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorShapeProto;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Measures the element type and shape of intermediate tensors by running the model in ONNX
 * Runtime, because exported graphs rarely carry shapes for them (MiniLM's has none).
 *
 * <p>Two runs on all-zero inputs: the symbolic dimensions take small values (the k-th distinct
 * dimension name 2 + k in the first run, 5 + 2k in the second), so two tensors count as equal in
 * shape only when they agree for both sizes and not because a sequence length happens to equal a
 * width. Zero is a valid token id, mask value and pixel, so typical models run on it.
 */
final class TensorShapes {

  private static final String ANONYMOUS = "\u0000unnamed";

  private TensorShapes() {}

  static Map<String, RemovableBlocks.TensorShape> probe(ModelProto model, Collection<String> tensors) {
    Set<String> initializers = new HashSet<>();
    model.getGraph().getInitializerList().forEach(t -> initializers.add(t.getName()));
    Map<String, Integer> params = new LinkedHashMap<>();
    for (var in : model.getGraph().getInputList()) {
      if (initializers.contains(in.getName())) {
        continue;
      }
      for (TensorShapeProto.Dimension d : in.getType().getTensorType().getShape().getDimList()) {
        if (!d.hasDimValue() || d.getDimValue() <= 0) {
          params.putIfAbsent(d.hasDimParam() ? d.getDimParam() : ANONYMOUS, params.size());
        }
      }
    }
    Path dir = null;
    try {
      dir = Files.createTempDirectory("shapes-");
      try (ActivationCollector collector = ActivationCollector.open(model, tensors, dir, 1)) {
        Map<String, String> types = collector.elementTypes();
        List<Map<String, long[]>> runs = new ArrayList<>();
        for (int run = 0; run < 2; run++) {
          List<NdArray> inputs = zeros(model, initializers, params, run);
          Map<String, long[]> shapes = new LinkedHashMap<>();
          collector.run(inputs, Integer.MAX_VALUE, Integer.MAX_VALUE, (b, n, activations) ->
              activations.forEach((name, a) -> shapes.put(name, a.shape().clone())));
          runs.add(shapes);
        }
        Map<String, RemovableBlocks.TensorShape> out = new LinkedHashMap<>();
        for (String t : tensors) {
          String type = types.getOrDefault(t, "UNKNOWN");
          List<long[]> shapes = new ArrayList<>();
          for (Map<String, long[]> r : runs) {
            if (r.containsKey(t)) {
              shapes.add(r.get(t));
            }
          }
          out.put(t, new RemovableBlocks.TensorShape(type, shapes.size() == runs.size() ? shapes : List.of()));
        }
        return out;
      }
    } catch (EvaluationException e) {
      throw new CompressionException("the model could not be run to measure its tensor shapes: " + e.getMessage());
    } catch (IOException e) {
      throw new CompressionException("no scratch directory to measure the model's tensor shapes: " + e.getMessage());
    } finally {
      if (dir != null) {
        try {
          Files.deleteIfExists(dir);
        } catch (IOException ignored) {
          // An empty temporary directory; the collector deleted its model copy.
        }
      }
    }
  }

  private static List<NdArray> zeros(ModelProto model, Set<String> initializers, Map<String, Integer> params,
      int run) {
    List<NdArray> out = new ArrayList<>();
    for (var in : model.getGraph().getInputList()) {
      if (initializers.contains(in.getName())) {
        continue;
      }
      var type = in.getType().getTensorType();
      DType dtype = dtype(in.getName(), type.getElemType());
      List<TensorShapeProto.Dimension> dims = type.getShape().getDimList();
      long[] shape = new long[dims.size()];
      long count = 1;
      for (int i = 0; i < shape.length; i++) {
        TensorShapeProto.Dimension d = dims.get(i);
        if (d.hasDimValue() && d.getDimValue() > 0) {
          shape[i] = d.getDimValue();
        } else {
          int k = params.get(d.hasDimParam() ? d.getDimParam() : ANONYMOUS);
          shape[i] = run == 0 ? 2 + k : 5 + 2L * k;
        }
        count *= shape[i];
      }
      ByteBuffer data = ByteBuffer.allocate(Math.toIntExact(count * dtype.size())).order(ByteOrder.LITTLE_ENDIAN);
      out.add(new NdArray(in.getName(), dtype, shape, data));
    }
    return out;
  }

  private static DType dtype(String input, int elemType) {
    return switch (TensorProto.DataType.forNumber(elemType)) {
      case FLOAT -> DType.FLOAT32;
      case DOUBLE -> DType.FLOAT64;
      case FLOAT16 -> DType.FLOAT16;
      case INT64 -> DType.INT64;
      case INT32 -> DType.INT32;
      case INT16 -> DType.INT16;
      case INT8 -> DType.INT8;
      case UINT8 -> DType.UINT8;
      case BOOL -> DType.BOOL;
      case null, default -> throw new CompressionException("input '" + input + "' has element type " + elemType
          + ", which the shape measurement cannot feed");
    };
  }
}
