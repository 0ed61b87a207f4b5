package dev.modelpress.compression;

import dev.modelpress.compression.quantize.WeightAxes;
import dev.modelpress.compression.quantize.WeightEncoder;
import dev.modelpress.format.FormatException;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.onnx.ExternalDataWriter;
import dev.modelpress.format.onnx.OnnxExternalData;
import dev.modelpress.format.onnx.OnnxModels;
import dev.modelpress.model.onnx.proto.OnnxProto.GraphProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ModelProto;
import dev.modelpress.model.onnx.proto.OnnxProto.NodeProto;
import dev.modelpress.model.onnx.proto.OnnxProto.OperatorSetIdProto;
import dev.modelpress.model.onnx.proto.OnnxProto.TensorProto;
import dev.modelpress.model.onnx.proto.OnnxProto.ValueInfoProto;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * Weight-only quantization (every scheme of the in-memory quantize step) of an ONNX model of any
 * size, file to file, with bounded heap.
 *
 * <p>The input may keep its weights in external data files (models over 2 GiB must). Selected
 * weights are rewritten one at a time by {@link StreamingWeightEncoder}: read from their memory
 * mapping in pieces, quantized by the in-memory path's {@code LinearQuantizer} and encoded by its
 * {@link WeightEncoder}, with codes streamed into the output's external data file. The heap holds
 * the graph structure, one piece, and one tensor's scales; MatMulNBits and packed-unpack encodings
 * (and MSE/binary/ternary ranges over a whole tensor or over channels spanning it) also hold one
 * byte per weight of the tensor at hand. Unselected external tensors are copied to the output data
 * file unchanged; inline tensors stay inline.
 *
 * <p>The output is {@code out} (the graph, small) plus {@code out + ".data"} beside it, the layout
 * ONNX Runtime and {@code onnx.load} expect: external locations are resolved relative to the model
 * file's directory. Its nodes and initializers (names, types, dims, bytes) are those the in-memory
 * pipeline emits for the same model; only where the bytes live differs.
 */
public final class ExternalDataQuantizer {

  private ExternalDataQuantizer() {}

  /**
   * Why these steps cannot run on a model with external data yet, or {@code null} when they can:
   * exactly one weight-only {@code quantize} step (any bits, grid, signedness, symmetry,
   * granularity, range, fp16/bf16 cast or encoding) and no calibration dataset. An evaluation
   * dataset is fine: ONNX Runtime loads both models from their directories into native memory.
   */
  public static String unsupported(List<StepSpec> steps, boolean calibration) {
    String prefix = "models with external data are compressed by the streaming quantizer, which runs exactly one "
        + "weight-only quantize step (an evaluation dataset may be given); ";
    if (steps.size() != 1) {
      return prefix + steps.size() + " steps were given; chaining steps over external data is not built yet";
    }
    String what = switch (steps.getFirst()) {
      case QuantizeSpec q -> null;
      case CalibratedQuantizeSpec c -> c.method() == CalibratedQuantizeSpec.Method.GPTQ ? "GPTQ quantization"
          : c.activations() != null ? "static quantization (calibrated activations)"
          : c.target() != null ? "mixed precision with a fidelity target" : "calibrated sensitivity analysis";
      case PruneSpec p -> "pruning (" + p.method() + ")";
      case ShareSpec s -> "weight sharing";
      case TrainSpec t -> "training (" + t.kind().name().toLowerCase(Locale.ROOT).replace('_', ' ') + ")";
    };
    if (what != null) {
      return prefix + "a " + steps.getFirst().type() + " step was given: " + what + " over external data is not built "
          + "yet (it reads the whole model or runs it on calibration data)";
    }
    QuantizeSpec.RangeMethod range = ((QuantizeSpec) steps.getFirst()).range();
    if (range == QuantizeSpec.RangeMethod.LSQ || range == QuantizeSpec.RangeMethod.HQQ) {
      return prefix + "range " + range.name().toLowerCase(Locale.ROOT) + " (fractional zero points) is not built for "
          + "the streaming path yet; use minmax or mse";
    }
    if (calibration) {
      return prefix + "a calibration dataset was given: calibrated steps over external data are not built yet, and a "
          + "weight-only step reads none";
    }
    return null;
  }

  /**
   * Quantizes (or casts) the weights {@code spec} selects from {@code in} into {@code out} and
   * {@code out.data}.
   *
   * @throws FormatException the input is malformed or an external reference is unsafe
   * @throws CompressionException nothing selected, a selected tensor is not FLOAT/FLOAT16, is not a
   *     main-graph initializer, holds NaN or infinity, needs more heap than this JVM allows for its
   *     encoding, or the model's opset cannot express the decoding
   */
  public static StepReport quantize(Path in, Path out, QuantizeSpec spec, Progress progress)
      throws FormatException, IOException {
    return quantize(in, out, spec, progress, StreamingWeightEncoder.defaultWholeLimit(),
        StreamingWeightEncoder.PIECE_ELEMENTS);
  }

  /**
   * As {@link #quantize(Path, Path, QuantizeSpec, Progress)} with an explicit whole-tensor heap limit
   * (bytes) and piece size (elements).
   */
  static StepReport quantize(Path in, Path out, QuantizeSpec spec, Progress progress, long wholeLimit,
      int pieceElements)
      throws FormatException, IOException {
    Path dataFile = out.resolveSibling(out.getFileName() + ".data");
    try (OnnxExternalData source = OnnxExternalData.open(in);
        ExternalDataWriter data = ExternalDataWriter.create(dataFile)) {
      ModelProto model = source.model();
      GraphProto graph = model.getGraph();
      List<TensorInfo> selected = TensorSelector.select(TensorSelector.reachable(spec, OnnxModels.weights(model)),
          spec.include(), spec.exclude());
      if (selected.isEmpty()) {
        throw new CompressionException("step 0 (quantize) selects no tensor");
      }
      Map<String, TensorInfo> chosen = new LinkedHashMap<>();
      for (TensorInfo t : selected) {
        String why = TensorSelector.unsupportedType(spec, t);
        if (why != null) {
          throw new CompressionException("step 0: " + why);
        }
        if (!t.mainGraphInitializer()) {
          // Streaming rewrites main-graph initializers only; skipping the rest silently would leave
          // part of the selection in float.
          throw new CompressionException("step 0: tensor '" + t.name() + "' (" + t.location() + ") is not a main-graph "
              + "initializer; streaming quantization of external-data models rewrites initializers only (exclude it)");
        }
        chosen.put(t.name(), t);
      }
      long opset = OnnxModels.defaultOpset(model);
      // One encoder for the whole model, created before any weight is encoded, as the in-memory
      // path does: fresh names then come out the same.
      WeightEncoder encoder = new WeightEncoder(graph, opset);
      StreamingWeightEncoder tensors = new StreamingWeightEncoder(spec, encoder, WeightAxes.of(graph), opset, data,
          wholeLimit, pieceElements);

      GraphProto.Builder g = graph.toBuilder().clearInitializer().clearNode().clearInput();
      List<NodeProto> decoders = new ArrayList<>();
      Map<String, UnaryOperator<NodeProto>> rewrites = new HashMap<>();
      Set<String> replaced = new HashSet<>();
      List<TensorReport> reports = new ArrayList<>();
      for (TensorProto t : graph.getInitializerList()) {
        TensorInfo info = chosen.get(t.getName());
        StreamingWeightEncoder.Done done = null;
        if (info != null) {
          progress.update(0, 1, "quantize", reports.size(), selected.size(), "quantizing " + t.getName());
          done = tensors.encode(info, t, StreamingWeightEncoder.Source.of(source, t, info.elementCount()));
          reports.add(done.report());
        }
        if (done == null || done.initializers() == null) {
          g.addInitializer(OnnxExternalData.isExternal(t) ? data.copy(t, source.data(t)) : t);
          continue;
        }
        g.addAllInitializer(done.initializers());
        decoders.addAll(done.decoders());
        replaced.add(t.getName());
        if (done.matMulRewrite() != null) {
          rewrites.put(t.getName(), done.matMulRewrite());
        }
      }
      progress.update(0, 1, "quantize", selected.size(), selected.size(), "quantized " + selected.size() + " tensors");
      // Decoders read only initializers, so putting them first keeps any node order valid.
      g.addAllNode(decoders);
      for (NodeProto node : graph.getNodeList()) {
        UnaryOperator<NodeProto> rewrite = node.getOpType().equals("MatMul") && node.getDomain().isEmpty()
            && node.getInputCount() == 2 ? rewrites.get(node.getInput(1)) : null;
        g.addNode(rewrite == null ? node : rewrite.apply(node));
      }
      for (ValueInfoProto v : graph.getInputList()) {
        // Before IR 4 initializers were also graph inputs; a decoded weight must not be one.
        if (!replaced.contains(v.getName())) {
          g.addInput(v);
        }
      }
      ModelProto.Builder result = model.toBuilder().setGraph(g);
      boolean importsMicrosoft = model.getOpsetImportList().stream()
          .anyMatch(o -> o.getDomain().equals(WeightEncoder.MICROSOFT_DOMAIN));
      if (!rewrites.isEmpty() && !importsMicrosoft) {
        result.addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(WeightEncoder.MICROSOFT_DOMAIN).setVersion(1));
      }
      OnnxModels.write(result.build(), out);
      String summary = WeightOnlyQuantization.summary(spec, reports) + "; streamed to external data";
      return new StepReport(0, "quantize", summary, reports);
    }
  }
}
