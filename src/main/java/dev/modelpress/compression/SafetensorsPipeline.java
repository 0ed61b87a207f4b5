package dev.modelpress.compression;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.safetensors.SafetensorsDtype;
import dev.modelpress.format.safetensors.SafetensorsFile;
import dev.modelpress.format.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * Prune and quantize steps on a safetensors checkpoint (one file or the shards of a sharded one),
 * file to file, one tensor at a time, with quantized output in the compressed-tensors layout that
 * vLLM and Hugging Face's compressed-tensors loader read.
 *
 * <p>With no graph there are no consumers to tell weights from other tensors, so the default
 * selection is every 2-D float tensor whose name ends in {@code .weight}, except embeddings,
 * normalization weights and {@code lm_head} (names containing {@code embed}, {@code norm} or
 * {@code lm_head}); include patterns replace that default, exclude patterns remove tensors.
 *
 * <p>Quantization must be the last step. A selected {@code X.weight} of shape [out, in] becomes,
 * when symmetric ({@code format: pack-quantized}, what vLLM's weight-only kernels load):
 * {@code X.weight_packed} I32 [out, ceil(in / (32 / bits))] holding 32/bits codes per word (code +
 * 2^(bits-1), first column in the lowest bits), {@code X.weight_scale} [out, 1] per channel, [out,
 * in / groupSize] per group or [1] per tensor, and {@code X.weight_shape} I64 [2] = [out, in]. An
 * asymmetric 8-bit weight ({@code format: int-quantized}) stays {@code X.weight} I8 [out, in] with
 * {@code X.weight_scale} and an I8 {@code X.weight_zero_point} of the scale's shape. Scales keep the
 * weight's float dtype, and codes are computed with the scale as stored, so every value decodes
 * within half a step. The {@code quantization_config} goes into each output file's {@code
 * __metadata__} and is returned for the model's {@code config.json}.
 *
 * <p>{@link #check} is the single set of rules: the service applies it at submit time to the
 * stored tensor catalogue, and {@link #run} applies it again to the files before writing anything.
 */
public final class SafetensorsPipeline {

  /** The 4-bit group size vLLM's kernels use most; what the docs' examples use. */
  public static final int GROUP_SIZE = 128;

  private static final Pattern NOT_BY_DEFAULT = Pattern.compile("(?i).*(embed|norm|lm_head).*");
  private static final JsonMapper JSON = JsonMapper.builder().build();

  private SafetensorsPipeline() {}

  /**
   * The result of a run.
   *
   * @param steps one report per step
   * @param quantizationConfig the compressed-tensors {@code quantization_config} (JSON), or {@code
   *     null} when no step quantized
   * @param outputs what each output file holds, in the order of the input files
   */
  public record Result(List<StepReport> steps, String quantizationConfig, List<Output> outputs) {}

  /**
   * One written file.
   *
   * @param file where it was written
   * @param tensors its tensor names in file order
   * @param dataBytes bytes of tensor data (the file minus its header)
   */
  public record Output(Path file, List<String> tensors, long dataBytes) {}

  /**
   * What {@link #check} found.
   *
   * @param invalid problems with the request (422): values, patterns, steps that cannot apply to a
   *     checkpoint without a graph
   * @param notBuilt requests that are valid but not built for safetensors yet (501), each naming its
   *     field
   */
  public record Check(List<Violation> invalid, List<String> notBuilt) {
    /** Whether the steps can run. */
    public boolean ok() {
      return invalid.isEmpty() && notBuilt.isEmpty();
    }
  }

  // ---- selection ----

  static boolean isFloat(String dtype) {
    return dtype.equals("F32") || dtype.equals("F16") || dtype.equals("BF16");
  }

  /** Whether a tensor is selected by default (no include patterns). */
  static boolean isDefaultWeight(TensorInfo t) {
    return isFloat(t.dtype()) && t.shape().size() == 2 && t.name().endsWith(".weight")
        && !NOT_BY_DEFAULT.matcher(t.name()).matches();
  }

  /** The tensors {@code step} applies to, in catalogue order; patterns must compile. */
  static List<TensorInfo> select(List<TensorInfo> tensors, StepSpec step) {
    List<Pattern> in = step.include().stream().map(Pattern::compile).toList();
    List<Pattern> out = step.exclude().stream().map(Pattern::compile).toList();
    List<TensorInfo> chosen = new ArrayList<>();
    for (TensorInfo t : tensors) {
      boolean take = isFloat(t.dtype())
          && (in.isEmpty() ? isDefaultWeight(t) : TensorSelector.anyMatches(in, t.name()))
          && !TensorSelector.anyMatches(out, t.name());
      if (take) {
        chosen.add(t);
      }
    }
    return chosen;
  }

  // ---- the rules ----

  /**
   * Checks the steps against a checkpoint's tensors (name, safetensors dtype such as {@code F32},
   * shape), without reading any data.
   */
  public static Check check(List<StepSpec> steps, List<TensorInfo> tensors) {
    List<Violation> invalid = new ArrayList<>();
    List<String> notBuilt = new ArrayList<>();
    if (steps == null || steps.isEmpty()) {
      invalid.add(new Violation("steps", "at least one step is required"));
      return new Check(invalid, notBuilt);
    }
    for (int i = 0; i < steps.size(); i++) {
      String at = "steps[" + i + "]";
      StepSpec step = steps.get(i);
      switch (step) {
        case CalibratedQuantizeSpec c -> {
          invalid.add(new Violation(at, CalibratedQuantization.describe(c) + " runs the model on calibration data; a "
              + "safetensors checkpoint holds weights but no graph to run. Use round-to-nearest (no method, no "
              + "activations, no target) or upload the model as ONNX"));
          continue;
        }
        case TrainSpec t -> {
          invalid.add(new Violation(at, t.type() + " trains the model: a safetensors checkpoint holds weights but no "
              + "graph to train; upload the model as ONNX"));
          continue;
        }
        case ShareSpec s -> {
          notBuilt.add(at + ".type: weight sharing (share) of safetensors checkpoints is not built yet; use prune "
              + "and quantize");
          continue;
        }
        case PruneSpec p -> {
          if (!checkPrune(p, i, at, invalid, notBuilt)) {
            continue;
          }
        }
        case QuantizeSpec q -> {
          if (i != steps.size() - 1) {
            invalid.add(new Violation(at, "quantize must be the last step for safetensors models: quantized weights "
                + "are no longer float tensors a later step could change"));
          }
          if (!checkQuantize(q, at, invalid, notBuilt)) {
            continue;
          }
        }
      }
      checkSelection(step, at, tensors, invalid);
    }
    return new Check(invalid, notBuilt);
  }

  /** True when the step can go on to the selection check. */
  private static boolean checkPrune(PruneSpec p, int index, String at, List<Violation> invalid,
      List<String> notBuilt) {
    switch (p.method()) {
      case PruneSpec.MAGNITUDE -> {}
      case PruneSpec.STRUCTURED -> {
        invalid.add(new Violation(at + ".method", "structured pruning removes channels together with the inputs of "
            + "the layers that read them, which needs the graph; a safetensors checkpoint has none (use magnitude, "
            + "or upload the model as ONNX)"));
        return false;
      }
      case PruneSpec.WANDA, PruneSpec.SPARSEGPT -> {
        invalid.add(new Violation(at + ".method", p.method() + " scores weights with the layers' input "
            + "activations, which needs a graph to run; a safetensors checkpoint has none (use magnitude, or upload "
            + "the model as ONNX)"));
        return false;
      }
      case PruneSpec.CORRELATION -> {
        invalid.add(new Violation(at + ".method", "correlation pruning finds redundant neurons from their "
            + "activations on calibration data, which needs a graph to run; a safetensors checkpoint has none (use "
            + "magnitude, or upload the model as ONNX)"));
        return false;
      }
      case PruneSpec.NM -> {
        notBuilt.add(at + ".method: nm pruning of safetensors checkpoints is not built yet; use magnitude");
        return false;
      }
      default -> {
        // The shared rule names the unknown method and the supported ones.
        SpecValidator.validatePrune(p, at, invalid);
        return false;
      }
    }
    int before = invalid.size();
    SpecValidator.validatePrune(p, at, invalid);
    if (p.threshold() == null && p.scope() == PruneSpec.Scope.GLOBAL && index > 0) {
      invalid.add(new Violation(at + ".scope", "global pruning ranks the checkpoint's own weights, so for "
          + "safetensors models it must be the first step"));
    }
    return invalid.size() == before;
  }

  /** True when the step can go on to the selection check. */
  private static boolean checkQuantize(QuantizeSpec q, String at, List<Violation> invalid, List<String> notBuilt) {
    String w = at + ".weights";
    if (!q.isInteger()) {
      notBuilt.add(w + ".dtype: fp16/bf16 casts of safetensors checkpoints are not built yet; use dtype int");
      return false;
    }
    int before = invalid.size();
    // No graph means no opset limits: check the values as for the newest opset.
    SpecValidator.validateQuantize(q, at, 21, invalid);
    if (invalid.size() > before) {
      return false;
    }
    if (q.format() != QuantizeSpec.Format.AUTO) {
      invalid.add(new Violation(w + ".format", q.format().name().toLowerCase(Locale.ROOT) + " is an ONNX encoding; "
          + "safetensors output is always compressed-tensors (leave format out)"));
    }
    if (!q.signed()) {
      invalid.add(new Violation(w + ".signed", "compressed-tensors stores signed integer codes (type int); leave "
          + "signed out"));
    }
    if (q.scheme() == QuantizeSpec.Scheme.TERNARY || (q.bits() != 8 && q.bits() != 4)) {
      notBuilt.add(w + ".bits: safetensors output supports 4 and 8 bits (the widths vLLM's compressed-tensors "
          + "kernels load); " + (q.scheme() == QuantizeSpec.Scheme.TERNARY ? "ternary" : q.bits() + "-bit")
          + " is not built for safetensors");
    }
    if (q.range() != QuantizeSpec.RangeMethod.MINMAX) {
      notBuilt.add(w + ".range: mse range search is not built for safetensors yet; use minmax");
    }
    if (!q.symmetric() && q.bits() == 4) {
      notBuilt.add(w + ".symmetric: asymmetric 4-bit output (zero points packed along the output axis) is not "
          + "built for safetensors; use symmetric");
    }
    return invalid.size() == before;
  }

  private static void checkSelection(StepSpec step, String at, List<TensorInfo> tensors, List<Violation> out) {
    boolean valid = checkPatterns(step.include(), at + ".include", tensors, out)
        & checkPatterns(step.exclude(), at + ".exclude", tensors, out);
    if (!valid) {
      return;
    }
    List<TensorInfo> chosen = select(tensors, step);
    if (chosen.isEmpty()) {
      out.add(new Violation(at, step.include().isEmpty()
          ? "selects no tensor: by default a safetensors step takes the 2-D F32/F16/BF16 tensors named *.weight, "
              + "except embeddings, norms and lm_head" + (step.exclude().isEmpty() ? "" : ", that are not excluded")
              + "; name tensors with include"
          : SpecValidator.ALL_EXCLUDED));
      return;
    }
    if (!(step instanceof QuantizeSpec q)) {
      return;
    }
    String field = step.include().isEmpty() ? at : at + ".include";
    for (TensorInfo t : chosen) {
      if (t.shape().size() != 2 || !t.name().endsWith(".weight")) {
        out.add(new Violation(field, "tensor '" + t.name() + "' (shape " + t.shape() + ") is not a 2-D *.weight; "
            + "compressed-tensors quantizes Linear weights [out, in] only (exclude it)"));
      } else if (q.granularity() == QuantizeSpec.Granularity.GROUP && q.groupSize() != null
          && t.shape().get(1) % q.groupSize() != 0) {
        out.add(new Violation(at + ".weights.groupSize", "tensor '" + t.name() + "' has " + t.shape().get(1)
            + " input columns, not a multiple of the group size " + q.groupSize() + " (exclude it or choose "
            + "another groupSize)"));
      }
    }
  }

  /** Reports invalid patterns and patterns that match nothing; true when there is neither. */
  private static boolean checkPatterns(List<String> patterns, String field, List<TensorInfo> tensors,
      List<Violation> out) {
    SpecValidator.PatternCheck c = SpecValidator.checkPatterns(patterns, field, tensors, t -> isFloat(t.dtype()),
        "F32/F16/BF16 tensor of the checkpoint", out);
    return c.compiled() && c.matched();
  }

  // ---- running ----

  /** Runs the steps on one file. See {@link #run(List, List, List, Progress)}. */
  public static Result run(Path in, Path out, List<StepSpec> steps, Progress progress)
      throws IOException, FormatException {
    return run(List.of(in), List.of(out), steps, progress);
  }

  /**
   * Runs the steps from the input files into the output files, the i-th output holding the i-th
   * input's tensors (quantized ones replaced by their compressed-tensors parameters). Tensors are
   * read from the memory mappings and written one at a time; {@code progress} is called before each
   * tensor and may throw {@link CompressionCancelledException} to stop (no output file is left).
   *
   * @throws CompressionException the steps break a rule of {@link #check}, or a tensor is not finite
   * @throws FormatException an input is not a valid safetensors file
   */
  public static Result run(List<Path> in, List<Path> out, List<StepSpec> steps, Progress progress)
      throws IOException, FormatException {
    if (in.size() != out.size() || in.isEmpty()) {
      throw new IllegalArgumentException(in.size() + " inputs for " + out.size() + " outputs");
    }
    List<SafetensorsFile> files = new ArrayList<>();
    try {
      for (Path p : in) {
        files.add(SafetensorsFile.open(p));
      }
      return runOpen(files, out, steps, progress);
    } finally {
      files.forEach(SafetensorsFile::close);
    }
  }

  private static Result runOpen(List<SafetensorsFile> files, List<Path> out, List<StepSpec> steps, Progress progress)
      throws IOException {
    Map<String, SafetensorsFile> home = new HashMap<>();
    List<TensorInfo> catalogue = new ArrayList<>();
    for (SafetensorsFile f : files) {
      for (SafetensorsFile.Entry e : f.entries()) {
        if (home.put(e.name(), f) != null) {
          throw new CompressionException("tensor '" + e.name() + "' is in more than one shard");
        }
        catalogue.add(new TensorInfo(e.name(), e.dtype().name(), e.shape(), List.of()));
      }
    }
    Check check = check(steps, catalogue);
    if (!check.ok()) {
      throw new CompressionException(check.invalid().isEmpty() ? check.notBuilt().getFirst()
          : check.invalid().getFirst().field() + ": " + check.invalid().getFirst().message());
    }
    List<Set<String>> selections = new ArrayList<>();
    for (StepSpec s : steps) {
      Set<String> names = new HashSet<>();
      select(catalogue, s).forEach(t -> names.add(t.name()));
      selections.add(names);
    }
    String last = steps.getLast().type();
    int items = catalogue.size();
    MagnitudePruner.Cut[] globalCuts = new MagnitudePruner.Cut[steps.size()];
    if (steps.getFirst() instanceof PruneSpec p && p.threshold() == null && p.scope() == PruneSpec.Scope.GLOBAL) {
      progress.update(0, 1, last, 0, items, "ranking weight magnitudes across the checkpoint");
      globalCuts[0] = globalCut(home, catalogue, selections.getFirst(), p.sparsity(), progress, last, items);
    }
    QuantizeSpec q = steps.getLast() instanceof QuantizeSpec qs ? qs : null;
    Set<String> quantized = q == null ? Set.of() : selections.getLast();
    String config = q == null ? null : quantizationConfig(catalogue, q, quantized);

    List<List<TensorReport>> reports = new ArrayList<>();
    steps.forEach(s -> reports.add(new ArrayList<>()));
    List<Output> outputs = new ArrayList<>();
    int item = 0;
    for (int f = 0; f < files.size(); f++) {
      SafetensorsFile file = files.get(f);
      List<SafetensorsWriter.Tensor> declared = new ArrayList<>();
      for (SafetensorsFile.Entry e : file.entries()) {
        if (quantized.contains(e.name())) {
          declared.addAll(quantizedTensors(e, q));
        } else {
          declared.add(new SafetensorsWriter.Tensor(e.name(), e.dtype(), e.shape()));
        }
      }
      Map<String, String> metadata = new LinkedHashMap<>(file.metadata());
      metadata.putIfAbsent("format", "pt");
      if (config != null) {
        metadata.put("quantization_config", config);
      }
      String where = files.size() == 1 ? "" : "shard " + (f + 1) + " of " + files.size() + ": ";
      try (SafetensorsWriter writer = SafetensorsWriter.create(out.get(f), declared, metadata)) {
        for (SafetensorsFile.Entry e : file.entries()) {
          progress.update(0, 1, last, item++, items, where + "compressing " + e.name());
          boolean touched = selections.stream().anyMatch(sel -> sel.contains(e.name()));
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
      }
      outputs.add(new Output(out.get(f), declared.stream().map(SafetensorsWriter.Tensor::name).toList(),
          declared.stream().mapToLong(SafetensorsWriter.Tensor::byteLength).sum()));
    }
    progress.update(0, 1, last, items, items, "compressed " + items + " tensors");
    List<StepReport> stepReports = new ArrayList<>();
    for (int i = 0; i < steps.size(); i++) {
      stepReports.add(new StepReport(i, steps.get(i).type(), summary(steps.get(i), reports.get(i)), reports.get(i)));
    }
    return new Result(stepReports, config, outputs);
  }

  private static MagnitudePruner.Cut globalCut(Map<String, SafetensorsFile> home, List<TensorInfo> catalogue,
      Set<String> names, double sparsity, Progress progress, String type, int items) {
    MagnitudePruner.Rank rank = new MagnitudePruner.Rank();
    long total = 0;
    for (TensorInfo t : catalogue) {
      if (names.contains(t.name())) {
        progress.update(0, 1, type, 0, items, "ranking " + t.name());
        float[] w = read(home.get(t.name()), t.name());
        MagnitudePruner.requireFinite(t.name(), w);
        rank.countCoarse(w);
        total += w.length;
      }
    }
    long k = (long) Math.floor(sparsity * total);
    if (k == 0) {
      return null;
    }
    rank.chooseBucket(k);
    for (TensorInfo t : catalogue) {
      if (names.contains(t.name())) {
        progress.update(0, 1, type, 0, items, "ranking " + t.name());
        rank.countFine(read(home.get(t.name()), t.name()));
      }
    }
    return rank.cut(k);
  }

  private static float[] read(SafetensorsFile file, String name) {
    SafetensorsFile.Entry e = file.entry(name);
    return Floats.read(file.tensorData(name), e.dtype(), Math.toIntExact(e.elementCount()));
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

  // ---- quantization ----

  /** Symmetric output packs codes into int32 words (vLLM's weight-only layout); asymmetric 8-bit stays int8. */
  private static boolean packed(QuantizeSpec q) {
    return q.symmetric();
  }

  private static String prefix(String weightName) {
    return weightName.substring(0, weightName.length() - ".weight".length());
  }

  private static List<Long> scaleShape(long rows, long cols, QuantizeSpec q) {
    return switch (q.granularity()) {
      case TENSOR -> List.of(1L);
      case CHANNEL -> List.of(rows, 1L);
      case GROUP -> List.of(rows, cols / q.groupSize());
    };
  }

  private static List<SafetensorsWriter.Tensor> quantizedTensors(SafetensorsFile.Entry e, QuantizeSpec q) {
    String prefix = prefix(e.name());
    long rows = e.shape().get(0);
    long cols = e.shape().get(1);
    List<Long> scaleShape = scaleShape(rows, cols, q);
    List<SafetensorsWriter.Tensor> out = new ArrayList<>();
    if (packed(q)) {
      int perWord = 32 / q.bits();
      out.add(new SafetensorsWriter.Tensor(prefix + ".weight_packed", SafetensorsDtype.I32,
          List.of(rows, (cols + perWord - 1) / perWord)));
      out.add(new SafetensorsWriter.Tensor(prefix + ".weight_scale", e.dtype(), scaleShape));
      out.add(new SafetensorsWriter.Tensor(prefix + ".weight_shape", SafetensorsDtype.I64, List.of(2L)));
    } else {
      out.add(new SafetensorsWriter.Tensor(e.name(), SafetensorsDtype.I8, e.shape()));
      out.add(new SafetensorsWriter.Tensor(prefix + ".weight_scale", e.dtype(), scaleShape));
      out.add(new SafetensorsWriter.Tensor(prefix + ".weight_zero_point", SafetensorsDtype.I8, scaleShape));
    }
    return out;
  }

  private static TensorReport quantize(SafetensorsFile.Entry e, float[] w, QuantizeSpec q, SafetensorsWriter writer)
      throws IOException {
    String prefix = prefix(e.name());
    int rows = Math.toIntExact(e.shape().get(0));
    int cols = Math.toIntExact(e.shape().get(1));
    int bits = q.bits();
    int perRow = switch (q.granularity()) {
      case TENSOR -> 0;
      case CHANNEL -> 1;
      case GROUP -> cols / q.groupSize();
    };
    int block = q.granularity() == QuantizeSpec.Granularity.GROUP ? q.groupSize() : cols;
    int count = perRow == 0 ? 1 : rows * perRow;
    float[] lo = new float[count];
    float[] hi = new float[count];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        int s = perRow == 0 ? 0 : r * perRow + c / block;
        float v = w[r * cols + c];
        lo[s] = Math.min(lo[s], v);
        hi[s] = Math.max(hi[s], v);
      }
    }
    // Symmetric: ±max|w| onto ±(2^(bits-1) - 1). Asymmetric (8-bit): [min(w,0), max(w,0)] onto
    // [-128, 127], as WeightQuantizer does for ONNX. The stored (dtype-rounded) scale computes the codes.
    int qmax = (1 << (bits - 1)) - 1;
    float[] scales = new float[count];
    byte[] zeroPoints = new byte[count];
    for (int s = 0; s < count; s++) {
      double range = q.symmetric() ? Math.max(-(double) lo[s], hi[s]) / qmax : ((double) hi[s] - lo[s]) / 255.0;
      float scale = Floats.roundTrip((float) range, e.dtype());
      if (!(scale > 0) || Float.isInfinite(scale)) {
        scales[s] = 1f;
        continue;
      }
      scales[s] = scale;
      if (!q.symmetric()) {
        zeroPoints[s] = (byte) Math.max(-128, Math.min(127, Math.rint(-128.0 - lo[s] / (double) scale)));
      }
    }
    ErrorStats stats = new ErrorStats();
    long bytesAfter;
    if (packed(q)) {
      int perWord = 32 / bits;
      int words = (cols + perWord - 1) / perWord;
      int offset = 1 << (bits - 1);
      int mask = (1 << bits) - 1;
      ByteBuffer data = ByteBuffer.allocate(rows * words * 4).order(ByteOrder.LITTLE_ENDIAN);
      int[] rowWords = new int[words];
      for (int r = 0; r < rows; r++) {
        java.util.Arrays.fill(rowWords, 0);
        for (int c = 0; c < cols; c++) {
          float scale = scales[perRow == 0 ? 0 : r * perRow + c / block];
          float v = w[r * cols + c];
          int code = (int) Math.max(-qmax, Math.min(qmax, Math.rint(v / scale)));
          stats.add(v, code * scale);
          rowWords[c / perWord] |= ((code + offset) & mask) << (bits * (c % perWord));
        }
        for (int word : rowWords) {
          data.putInt(word);
        }
      }
      writer.write(prefix + ".weight_packed", data.flip());
      writer.write(prefix + ".weight_scale", Floats.write(scales, e.dtype()));
      writer.write(prefix + ".weight_shape",
          ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(rows).putLong(cols).flip());
      bytesAfter = (long) rows * words * 4 + (long) count * e.dtype().size() + 16;
    } else {
      byte[] codes = new byte[w.length];
      for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
          int s = perRow == 0 ? 0 : r * perRow + c / block;
          float v = w[r * cols + c];
          int code = (int) Math.max(-128, Math.min(127, Math.rint(v / scales[s]) + zeroPoints[s]));
          codes[r * cols + c] = (byte) code;
          stats.add(v, (code - zeroPoints[s]) * scales[s]);
        }
      }
      writer.write(e.name(), ByteBuffer.wrap(codes));
      writer.write(prefix + ".weight_scale", Floats.write(scales, e.dtype()));
      writer.write(prefix + ".weight_zero_point", ByteBuffer.wrap(zeroPoints));
      bytesAfter = codes.length + (long) count * (e.dtype().size() + 1);
    }
    return new TensorReport(e.name(), e.shape(), w.length, e.byteLength(), bytesAfter,
        stats.sparsityBefore(), stats.sparsityAfter(), stats.mse(), stats.sqnrDb(), bits, q.granularity().name(),
        q.granularity() == QuantizeSpec.Granularity.GROUP ? q.groupSize() : null, "int" + bits, "minmax", null,
        "compressed-tensors " + format(q), 8.0 * bytesAfter / w.length);
  }

  private static String format(QuantizeSpec q) {
    return packed(q) ? "pack-quantized" : "int-quantized";
  }

  private static String quantizationConfig(List<TensorInfo> catalogue, QuantizeSpec q, Set<String> quantized) {
    ObjectNode root = JSON.createObjectNode();
    root.put("quant_method", "compressed-tensors");
    root.put("format", format(q));
    root.put("quantization_status", "compressed");
    ObjectNode group = root.putObject("config_groups").putObject("group_0");
    group.putArray("targets").add("Linear");
    ObjectNode weights = group.putObject("weights");
    weights.put("num_bits", q.bits());
    weights.put("type", "int");
    weights.put("symmetric", q.symmetric());
    weights.put("dynamic", false);
    weights.put("observer", "minmax");
    weights.put("strategy", q.granularity().name().toLowerCase(Locale.ROOT));
    if (q.granularity() == QuantizeSpec.Granularity.GROUP) {
      weights.put("group_size", q.groupSize());
    } else {
      weights.putNull("group_size");
    }
    group.putNull("input_activations");
    group.putNull("output_activations");
    ArrayNode ignore = root.putArray("ignore");
    for (TensorInfo t : catalogue) {
      if (isFloat(t.dtype()) && t.shape().size() == 2 && t.name().endsWith(".weight") && !quantized.contains(t.name())) {
        ignore.add(prefix(t.name()));
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
          q.bits(), format(q), tensors.size(), before, after, before == 0 ? 0 : 100.0 * after / before);
    }
    return String.format(Locale.ROOT, "magnitude pruning of %d tensors: %d of %d weights are now zero (%.2f%%)",
        tensors.size(), Math.round(zeros), params, params == 0 ? 0 : 100 * zeros / params);
  }

  /** Conversions between safetensors float dtypes and {@code float[]}. */
  public static final class Floats {
    private Floats() {}

    /** The first {@code n} values of little-endian {@code data} of a float dtype. */
    public static float[] read(ByteBuffer data, SafetensorsDtype dtype, int n) {
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

    /** The values encoded little-endian in a float dtype (bf16 rounds to nearest even). */
    public static ByteBuffer write(float[] values, SafetensorsDtype dtype) {
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
