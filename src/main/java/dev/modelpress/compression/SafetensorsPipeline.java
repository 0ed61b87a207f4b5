package dev.modelpress.compression;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.safetensors.SafetensorsDtype;
import dev.modelpress.format.safetensors.SafetensorsFile;
import dev.modelpress.format.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * Prune and quantize steps on a safetensors checkpoint, file to file, one tensor at a time, with
 * quantized output in the compressed-tensors layout that vLLM and llm-compressor load.
 *
 * <p>With no graph there are no consumers to tell weights from other tensors, so the default
 * selection is every 2-D float tensor whose name ends in {@code .weight}, except embeddings,
 * normalization weights and {@code lm_head} (names containing {@code embed}, {@code norm} or
 * {@code lm_head}); include patterns replace that default, exclude patterns remove tensors.
 *
 * <p>Quantization must be the last step. A selected {@code X.weight} of shape [out, in] becomes:
 * <ul>
 *   <li>8 bits ({@code format: int-quantized}): {@code X.weight} I8 [out, in], {@code
 *       X.weight_scale} [out, 1] per channel or [1] per tensor, {@code X.weight_zero_point} I8 of
 *       the same shape when asymmetric;
 *   <li>4 bits ({@code format: pack-quantized}, symmetric, groups of {@link #GROUP_SIZE} along
 *       {@code in}): {@code X.weight_packed} I32 [out, ceil(in/8)] holding eight 4-bit codes per
 *       word (code + 8, first element in the lowest bits), {@code X.weight_scale} [out, in/group],
 *       {@code X.weight_shape} I64 [2] = [out, in].
 * </ul>
 * Scales keep the weight's float dtype. The {@code quantization_config} (quant_method {@code
 * compressed-tensors}, one config group targeting {@code Linear}, the {@code ignore} list of
 * 2-D {@code .weight} modules left in float) goes into the header's {@code __metadata__} under
 * {@code quantization_config} and is returned for the model's {@code config.json}.
 */
public final class SafetensorsPipeline {

  /** Elements per scale for 4-bit groups, the group size vLLM's int4 kernels use most. */
  public static final int GROUP_SIZE = 128;

  private static final Pattern NOT_BY_DEFAULT = Pattern.compile("(?i).*(embed|norm|lm_head).*");
  private static final JsonMapper JSON = JsonMapper.builder().build();

  private SafetensorsPipeline() {}

  /**
   * The result: one report per step and the compressed-tensors {@code quantization_config} (JSON),
   * or {@code null} when no step quantized.
   */
  public record Result(List<StepReport> steps, String quantizationConfig) {}

  /** Whether a tensor is selected by default (no include patterns). */
  static boolean isDefaultWeight(SafetensorsFile.Entry e) {
    return isFloat(e.dtype()) && e.shape().size() == 2 && e.name().endsWith(".weight")
        && !NOT_BY_DEFAULT.matcher(e.name()).matches();
  }

  private static boolean isFloat(SafetensorsDtype d) {
    return d == SafetensorsDtype.F32 || d == SafetensorsDtype.F16 || d == SafetensorsDtype.BF16;
  }

  /**
   * Runs the steps from {@code in} into {@code out}.
   *
   * @throws CompressionException a step selects nothing, a quantize step is not last, selects a
   *     tensor that is not 2-D, or asks for something not supported (4-bit asymmetric, bits other
   *     than 4 and 8, an input dim not divisible by the group size)
   */
  public static Result run(Path in, Path out, List<StepSpec> steps, Progress progress)
      throws IOException, FormatException {
    try (SafetensorsFile file = SafetensorsFile.open(in)) {
      List<List<String>> selections = new ArrayList<>();
      QuantizeSpec quantize = null;
      for (int i = 0; i < steps.size(); i++) {
        StepSpec s = steps.get(i);
        List<String> chosen = select(file, s);
        if (chosen.isEmpty()) {
          throw new CompressionException("step " + i + " (" + s.type() + ") selects no tensor");
        }
        if (s instanceof QuantizeSpec q) {
          if (i != steps.size() - 1) {
            throw new CompressionException("step " + i + ": quantize must be the last step for safetensors models");
          }
          if (q.bits() != 8 && q.bits() != 4) {
            throw new CompressionException("step " + i + ": bits " + q.bits() + " is not supported for safetensors (4 or 8)");
          }
          if (q.bits() == 4 && !q.symmetric()) {
            throw new CompressionException("step " + i + ": 4-bit safetensors output is symmetric only");
          }
          for (String name : chosen) {
            List<Long> shape = file.entry(name).shape();
            if (shape.size() != 2) {
              throw new CompressionException("tensor '" + name + "' has shape " + shape
                  + "; compressed-tensors quantizes 2-D Linear weights only (exclude it)");
            }
            if (q.bits() == 4 && shape.get(1) % GROUP_SIZE != 0) {
              throw new CompressionException("tensor '" + name + "' has " + shape.get(1)
                  + " input columns, not a multiple of the 4-bit group size " + GROUP_SIZE);
            }
          }
          quantize = q;
        }
        selections.add(chosen);
      }
      MagnitudePruner.Cut[] globalCuts = new MagnitudePruner.Cut[steps.size()];
      for (int i = 0; i < steps.size(); i++) {
        if (steps.get(i) instanceof PruneSpec p && p.threshold() == null && p.scope() == PruneSpec.Scope.GLOBAL) {
          if (i > 0) {
            throw new CompressionException("step " + i + ": global pruning must be the first step for safetensors models");
          }
          globalCuts[i] = globalCut(file, selections.get(i), p.sparsity());
        }
      }

      QuantizeSpec q = quantize;
      List<String> quantized = q == null ? List.of() : selections.getLast();
      List<SafetensorsWriter.Tensor> declared = new ArrayList<>();
      for (SafetensorsFile.Entry e : file.entries()) {
        if (!quantized.contains(e.name())) {
          declared.add(new SafetensorsWriter.Tensor(e.name(), e.dtype(), e.shape()));
          continue;
        }
        String prefix = e.name().substring(0, e.name().length() - ".weight".length());
        long rows = e.shape().get(0);
        long cols = e.shape().get(1);
        boolean channel = q.granularity() == QuantizeSpec.Granularity.CHANNEL;
        if (q.bits() == 8) {
          List<Long> paramShape = channel ? List.of(rows, 1L) : List.of(1L);
          declared.add(new SafetensorsWriter.Tensor(e.name(), SafetensorsDtype.I8, e.shape()));
          declared.add(new SafetensorsWriter.Tensor(prefix + ".weight_scale", e.dtype(), paramShape));
          if (!q.symmetric()) {
            declared.add(new SafetensorsWriter.Tensor(prefix + ".weight_zero_point", SafetensorsDtype.I8, paramShape));
          }
        } else {
          declared.add(new SafetensorsWriter.Tensor(prefix + ".weight_packed", SafetensorsDtype.I32, List.of(rows, (cols + 7) / 8)));
          declared.add(new SafetensorsWriter.Tensor(prefix + ".weight_scale", e.dtype(), List.of(rows, cols / GROUP_SIZE)));
          declared.add(new SafetensorsWriter.Tensor(prefix + ".weight_shape", SafetensorsDtype.I64, List.of(2L)));
        }
      }
      String config = q == null ? null : quantizationConfig(file, q, quantized);
      Map<String, String> metadata = new LinkedHashMap<>(file.metadata());
      metadata.putIfAbsent("format", "pt");
      if (config != null) {
        metadata.put("quantization_config", config);
      }

      List<List<TensorReport>> reports = new ArrayList<>();
      steps.forEach(s -> reports.add(new ArrayList<>()));
      int n = file.entries().size();
      try (SafetensorsWriter writer = SafetensorsWriter.create(out, declared, metadata)) {
        int item = 0;
        for (SafetensorsFile.Entry e : file.entries()) {
          progress.update(0, 1, steps.getLast().type(), item++, n, "compressing " + e.name());
          boolean touched = false;
          for (List<String> sel : selections) {
            touched |= sel.contains(e.name());
          }
          if (!touched) {
            writer.write(e.name(), file.tensorData(e.name()));
            continue;
          }
          float[] w = Floats.read(file.tensorData(e.name()), e.dtype(), Math.toIntExact(e.elementCount()));
          MagnitudePruner.requireFinite(e.name(), w);
          for (int i = 0; i < steps.size(); i++) {
            if (!selections.get(i).contains(e.name())) {
              continue;
            }
            if (steps.get(i) instanceof PruneSpec p) {
              reports.get(i).add(prune(e, w, p, globalCuts[i]));
            } else {
              reports.get(i).add(quantize(e, w, (QuantizeSpec) steps.get(i), writer));
            }
          }
          if (!quantized.contains(e.name())) {
            writer.write(e.name(), Floats.write(w, e.dtype()));
          }
        }
        progress.update(0, 1, steps.getLast().type(), n, n, "compressed " + n + " tensors");
      }
      List<StepReport> stepReports = new ArrayList<>();
      for (int i = 0; i < steps.size(); i++) {
        stepReports.add(new StepReport(i, steps.get(i).type(), summary(steps.get(i), reports.get(i)), reports.get(i)));
      }
      return new Result(stepReports, config);
    }
  }

  private static List<String> select(SafetensorsFile file, StepSpec s) {
    List<Pattern> in = s.include().stream().map(Pattern::compile).toList();
    List<Pattern> out = s.exclude().stream().map(Pattern::compile).toList();
    List<String> chosen = new ArrayList<>();
    for (SafetensorsFile.Entry e : file.entries()) {
      boolean take = isFloat(e.dtype())
          && (in.isEmpty() ? isDefaultWeight(e) : TensorSelector.anyMatches(in, e.name()))
          && !TensorSelector.anyMatches(out, e.name());
      if (take) {
        chosen.add(e.name());
      }
    }
    return chosen;
  }

  private static MagnitudePruner.Cut globalCut(SafetensorsFile file, List<String> names, double sparsity) {
    MagnitudePruner.Rank rank = new MagnitudePruner.Rank();
    long total = 0;
    for (String name : names) {
      SafetensorsFile.Entry e = file.entry(name);
      float[] w = Floats.read(file.tensorData(name), e.dtype(), Math.toIntExact(e.elementCount()));
      MagnitudePruner.requireFinite(name, w);
      rank.countCoarse(w);
      total += w.length;
    }
    long k = (long) Math.floor(sparsity * total);
    if (k == 0) {
      return null;
    }
    rank.chooseBucket(k);
    for (String name : names) {
      SafetensorsFile.Entry e = file.entry(name);
      rank.countFine(Floats.read(file.tensorData(name), e.dtype(), Math.toIntExact(e.elementCount())));
    }
    return rank.cut(k);
  }

  private static TensorReport prune(SafetensorsFile.Entry e, float[] w, PruneSpec p, MagnitudePruner.Cut cut) {
    float[] before = w.clone();
    if (p.threshold() != null) {
      MagnitudePruner.pruneAtOrBelow(w, p.threshold());
    } else if (p.scope() == PruneSpec.Scope.LAYER) {
      MagnitudePruner.pruneSmallest(w, (long) Math.floor(p.sparsity() * w.length));
    } else if (cut != null) {
      cut.apply(w);
    }
    ErrorStats stats = new ErrorStats();
    for (int i = 0; i < w.length; i++) {
      stats.add(before[i], w[i]);
    }
    return new TensorReport(e.name(), e.shape(), w.length, e.byteLength(), e.byteLength(),
        stats.sparsityBefore(), stats.sparsityAfter(), stats.mse(), stats.sqnrDb(), null, null);
  }

  private static TensorReport quantize(SafetensorsFile.Entry e, float[] w, QuantizeSpec q, SafetensorsWriter writer)
      throws IOException {
    String prefix = e.name().substring(0, e.name().length() - ".weight".length());
    int rows = Math.toIntExact(e.shape().get(0));
    int cols = Math.toIntExact(e.shape().get(1));
    ErrorStats stats = new ErrorStats();
    long bytesAfter;
    if (q.bits() == 8) {
      // Rows are output channels in PyTorch's Linear [out, in] layout: axis 0.
      int axis = q.granularity() == QuantizeSpec.Granularity.CHANNEL ? 0 : -1;
      WeightQuantizer.Quantized r = WeightQuantizer.quantize(w, new long[] {rows, cols}, axis, q.symmetric(), stats);
      writer.write(e.name(), ByteBuffer.wrap(r.codes()));
      writer.write(prefix + ".weight_scale", Floats.write(r.scales(), e.dtype()));
      bytesAfter = r.codes().length + (long) r.scales().length * e.dtype().size();
      if (!q.symmetric()) {
        writer.write(prefix + ".weight_zero_point", ByteBuffer.wrap(r.zeroPoints()));
        bytesAfter += r.zeroPoints().length;
      }
    } else {
      int groups = cols / GROUP_SIZE;
      float[] scales = new float[rows * groups];
      int words = (cols + 7) / 8;
      ByteBuffer packed = ByteBuffer.allocate(rows * words * 4).order(ByteOrder.LITTLE_ENDIAN);
      for (int r = 0; r < rows; r++) {
        int[] rowWords = new int[words];
        for (int g = 0; g < groups; g++) {
          float max = 0;
          for (int c = g * GROUP_SIZE; c < (g + 1) * GROUP_SIZE; c++) {
            max = Math.max(max, Math.abs(w[r * cols + c]));
          }
          float scale = max / 7f;
          scale = scale > 0 && Float.isFinite(scale) ? Floats.roundTrip(scale, e.dtype()) : 1f;
          scales[r * groups + g] = scale;
          for (int c = g * GROUP_SIZE; c < (g + 1) * GROUP_SIZE; c++) {
            int code = (int) Math.max(-8, Math.min(7, Math.rint(w[r * cols + c] / scale)));
            stats.add(w[r * cols + c], code * scale);
            rowWords[c / 8] |= (code + 8) << (4 * (c % 8));
          }
        }
        for (int word : rowWords) {
          packed.putInt(word);
        }
      }
      writer.write(prefix + ".weight_packed", packed.flip());
      writer.write(prefix + ".weight_scale", Floats.write(scales, e.dtype()));
      writer.write(prefix + ".weight_shape",
          ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(rows).putLong(cols).flip());
      bytesAfter = (long) rows * words * 4 + (long) scales.length * e.dtype().size() + 16;
    }
    return new TensorReport(e.name(), e.shape(), w.length, e.byteLength(), bytesAfter,
        stats.sparsityBefore(), stats.sparsityAfter(), stats.mse(), stats.sqnrDb(), q.bits(),
        q.bits() == 4 ? "GROUP" : q.granularity().name());
  }

  private static String quantizationConfig(SafetensorsFile file, QuantizeSpec q, List<String> quantized) {
    ObjectNode root = JSON.createObjectNode();
    root.put("quant_method", "compressed-tensors");
    root.put("format", q.bits() == 8 ? "int-quantized" : "pack-quantized");
    root.put("quantization_status", "compressed");
    ObjectNode group = root.putObject("config_groups").putObject("group_0");
    group.putArray("targets").add("Linear");
    ObjectNode weights = group.putObject("weights");
    weights.put("num_bits", q.bits());
    weights.put("type", "int");
    weights.put("symmetric", q.symmetric());
    weights.put("dynamic", false);
    weights.put("observer", "minmax");
    if (q.bits() == 4) {
      weights.put("strategy", "group");
      weights.put("group_size", GROUP_SIZE);
    } else {
      weights.put("strategy", q.granularity().name().toLowerCase(Locale.ROOT));
      weights.putNull("group_size");
    }
    group.putNull("input_activations");
    group.putNull("output_activations");
    ArrayNode ignore = root.putArray("ignore");
    for (SafetensorsFile.Entry e : file.entries()) {
      if (isFloat(e.dtype()) && e.shape().size() == 2 && e.name().endsWith(".weight") && !quantized.contains(e.name())) {
        ignore.add(e.name().substring(0, e.name().length() - ".weight".length()));
      }
    }
    root.putNull("kv_cache_scheme");
    return JSON.writeValueAsString(root);
  }

  private static String summary(StepSpec step, List<TensorReport> tensors) {
    long before = 0;
    long after = 0;
    long params = 0;
    double zeros = 0;
    for (TensorReport t : tensors) {
      before += t.bytesBefore();
      after += t.bytesAfter();
      params += t.parameters();
      zeros += t.sparsityAfter() * t.parameters();
    }
    if (step instanceof QuantizeSpec q) {
      return String.format(Locale.ROOT, "int%d weight quantization (compressed-tensors %s) of %d tensors: %d -> %d bytes (%.1f%%)",
          q.bits(), q.bits() == 8 ? "int-quantized" : "pack-quantized", tensors.size(), before, after,
          before == 0 ? 0 : 100.0 * after / before);
    }
    return String.format(Locale.ROOT, "magnitude pruning of %d tensors: %d of %d weights are now zero (%.2f%%)",
        tensors.size(), Math.round(zeros), params, params == 0 ? 0 : 100 * zeros / params);
  }

  /** Conversions between safetensors float dtypes and {@code float[]}. */
  static final class Floats {
    private Floats() {}

    static float[] read(ByteBuffer data, SafetensorsDtype dtype, int n) {
      ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
      float[] out = new float[n];
      switch (dtype) {
        case F32 -> b.asFloatBuffer().get(out);
        case F16 -> {
          for (int i = 0; i < n; i++) {
            out[i] = Float.float16ToFloat(b.getShort(2 * i));
          }
        }
        case BF16 -> {
          for (int i = 0; i < n; i++) {
            out[i] = Float.intBitsToFloat((b.getShort(2 * i) & 0xffff) << 16);
          }
        }
        default -> throw new IllegalArgumentException(dtype + " is not a float dtype");
      }
      return out;
    }

    static ByteBuffer write(float[] values, SafetensorsDtype dtype) {
      ByteBuffer b = ByteBuffer.allocate(values.length * dtype.size()).order(ByteOrder.LITTLE_ENDIAN);
      for (float v : values) {
        switch (dtype) {
          case F32 -> b.putFloat(v);
          case F16 -> b.putShort(Float.floatToFloat16(v));
          case BF16 -> b.putShort(toBf16(v));
          default -> throw new IllegalArgumentException(dtype + " is not a float dtype");
        }
      }
      return b.flip();
    }

    /** The value as stored in {@code dtype} and read back, so codes are computed with the stored scale. */
    static float roundTrip(float v, SafetensorsDtype dtype) {
      return switch (dtype) {
        case F16 -> Float.float16ToFloat(Float.floatToFloat16(v));
        case BF16 -> Float.intBitsToFloat((toBf16(v) & 0xffff) << 16);
        default -> v;
      };
    }

    /** Round to nearest even on the 16 dropped bits (finite values). */
    private static short toBf16(float v) {
      int bits = Float.floatToRawIntBits(v);
      int rounded = bits + 0x7fff + ((bits >>> 16) & 1);
      return (short) (rounded >>> 16);
    }
  }
}
