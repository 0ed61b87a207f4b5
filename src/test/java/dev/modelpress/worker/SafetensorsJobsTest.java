package dev.modelpress.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.compression.SafetensorsPipeline.Floats;
import dev.modelpress.format.safetensors.SafetensorsDtype;
import dev.modelpress.format.safetensors.SafetensorsFile;
import dev.modelpress.format.safetensors.SafetensorsWriter;
import dev.modelpress.testing.Api;
import dev.modelpress.testing.Archives;
import dev.modelpress.testing.OnnxGraphBuilder;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.ActiveProfiles;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Jobs on safetensors checkpoints through the real service (HTTP, PostgreSQL queue, worker,
 * artifact store): the downloaded output is decoded here, independently of the pipeline, and its
 * header is checked against the compressed-tensors convention.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=true", "modelpress.worker.poll-interval=500ms",
        "modelpress.models.archive-max-entries=50"})
@ActiveProfiles("test")
class SafetensorsJobsTest {

  private static final Duration TIMEOUT = Duration.ofMinutes(2);
  private static final JsonMapper JSON = JsonMapper.builder().build();
  private static final String PROBLEMS = "https://modelpress.dev/problems/";

  /** The Linear weights a llama-shaped checkpoint quantizes by default, with their [out, in]. */
  static final Map<String, long[]> LINEAR = new LinkedHashMap<>();

  static {
    LINEAR.put("model.layers.0.self_attn.q_proj", new long[] {64, 64});
    LINEAR.put("model.layers.0.self_attn.k_proj", new long[] {64, 64});
    LINEAR.put("model.layers.0.mlp.up_proj", new long[] {256, 64});
    LINEAR.put("model.layers.0.mlp.down_proj", new long[] {64, 256});
  }

  @LocalServerPort int port;
  @TempDir Path tmp;
  Api api;

  @BeforeEach
  void setUp() {
    api = new Api(port);
  }

  /** A small llama-shaped checkpoint: embeddings, a norm, four Linear weights, a bias, lm_head. */
  static Map<String, float[]> llamaTensors() {
    Map<String, float[]> t = new LinkedHashMap<>();
    t.put("model.embed_tokens.weight", OnnxGraphBuilder.randomFloats(10, 100 * 64, 1f));
    t.put("model.layers.0.input_layernorm.weight", OnnxGraphBuilder.randomFloats(11, 64, 1f));
    int seed = 20;
    for (Map.Entry<String, long[]> e : LINEAR.entrySet()) {
      t.put(e.getKey() + ".weight", OnnxGraphBuilder.randomFloats(seed++, (int) (e.getValue()[0] * e.getValue()[1]),
          0.2f));
    }
    t.put("model.layers.0.self_attn.q_proj.bias", OnnxGraphBuilder.randomFloats(30, 64, 0.1f));
    t.put("model.norm.weight", OnnxGraphBuilder.randomFloats(31, 64, 1f));
    t.put("lm_head.weight", OnnxGraphBuilder.randomFloats(32, 100 * 64, 1f));
    return t;
  }

  static List<Long> shapeOf(String name) {
    String prefix = name.substring(0, name.lastIndexOf('.'));
    if (name.endsWith(".weight") && LINEAR.containsKey(prefix)) {
      return List.of(LINEAR.get(prefix)[0], LINEAR.get(prefix)[1]);
    }
    return name.startsWith("model.embed") || name.startsWith("lm_head") ? List.of(100L, 64L) : List.of(64L);
  }

  /** Writes the tensors as one safetensors file in {@code dtype}. */
  static Path write(Path file, Map<String, float[]> tensors, SafetensorsDtype dtype) throws IOException {
    List<SafetensorsWriter.Tensor> declared = new ArrayList<>();
    tensors.keySet().forEach(n -> declared.add(new SafetensorsWriter.Tensor(n, dtype, shapeOf(n))));
    try (SafetensorsWriter w = SafetensorsWriter.create(file, declared, Map.of("format", "pt"))) {
      for (Map.Entry<String, float[]> e : tensors.entrySet()) {
        w.write(e.getKey(), Floats.write(e.getValue(), dtype));
      }
    }
    return file;
  }

  @Test
  void pruneThenInt8JobWritesPackQuantizedOutputThatDecodesWithinHalfAStep() throws Exception {
    Map<String, float[]> tensors = llamaTensors();
    Path original = write(tmp.resolve("llama.safetensors"), tensors, SafetensorsDtype.F32);
    String modelId = upload(original);

    JsonNode job = run("""
        {"modelId":"%s","steps":[{"type":"prune","sparsity":0.5},{"type":"quantize"}]}""".formatted(modelId));
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    assertThat(job.get("progress").get("message").asString()).isEqualTo("finished");
    String id = job.get("id").asString();
    assertThat(artifactNames(id)).containsExactly("model.safetensors", "quantization_config.json", "report.json");

    Path out = download(id, "model.safetensors");
    JsonNode header = header(out);
    JsonNode config = JSON.readTree(header.get("__metadata__").get("quantization_config").asString());
    assertConfig(config, 8, "channel", null);
    assertThat(config.get("ignore").toString()).isEqualTo("[\"model.embed_tokens\",\"lm_head\"]");
    assertThat(JSON.readTree(Files.readString(download(id, "quantization_config.json"))).get("quantization_config"))
        .isEqualTo(config);

    try (SafetensorsFile q = SafetensorsFile.open(out)) {
      for (Map.Entry<String, long[]> e : LINEAR.entrySet()) {
        String p = e.getKey();
        long rows = e.getValue()[0];
        long cols = e.getValue()[1];
        assertTensor(header, p + ".weight_packed", "I32", rows, cols / 4);
        assertTensor(header, p + ".weight_scale", "F32", rows, 1);
        assertTensor(header, p + ".weight_shape", "I64", 2);
        assertThat(header.has(p + ".weight")).isFalse();
        assertThat(header.has(p + ".weight_zero_point")).isFalse();

        float[] expected = prunedHalf(tensors.get(p + ".weight"));
        Decoded d = decode(q, p, 8, 0);
        assertThat(d.shape()).containsExactly(rows, cols);
        int zeros = 0;
        for (int i = 0; i < expected.length; i++) {
          float step = d.scale()[i];
          assertThat(Math.abs(d.values()[i] - expected[i])).as("%s[%d]", p, i).isLessThanOrEqualTo(step / 2 * 1.0001f);
          if (expected[i] == 0) {
            assertThat(d.values()[i]).isZero();
          }
          zeros += d.values()[i] == 0 ? 1 : 0;
        }
        assertThat(zeros).isEqualTo(expected.length / 2);
      }
      // Left in float and byte for byte as uploaded: embeddings, norms, bias, lm_head.
      try (SafetensorsFile in = SafetensorsFile.open(original)) {
        for (String kept : List.of("model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
            "model.layers.0.self_attn.q_proj.bias", "model.norm.weight", "lm_head.weight")) {
          assertThat(q.tensorData(kept)).isEqualTo(in.tensorData(kept));
        }
      }
    }

    JsonNode report = JSON.readTree(Files.readString(download(id, "report.json")));
    JsonNode prune = report.get("stepReports").get(0);
    JsonNode quantize = report.get("stepReports").get(1);
    assertThat(prune.get("tensors")).hasSize(4);
    assertThat(quantize.get("tensors")).hasSize(4);
    for (JsonNode t : prune.get("tensors")) {
      assertThat(t.get("sparsityAfter").asDouble()).isEqualTo(0.5);
    }
    for (JsonNode t : quantize.get("tensors")) {
      assertThat(t.get("bits").asInt()).isEqualTo(8);
      assertThat(t.get("encoding").asString()).isEqualTo("compressed-tensors pack-quantized");
      // Per-channel int8 of a half-zero tensor: noise far below the signal.
      assertThat(t.get("sqnrDb").asDouble()).isGreaterThan(35);
      long params = t.get("parameters").asLong();
      assertThat(t.get("bytesAfter").asLong()).isEqualTo(params + t.get("shape").get(0).asLong() * 4 + 16);
    }
    long before = Files.size(original);
    long after = Files.size(out);
    assertThat(report.get("summary").get("bytesBefore").asLong()).isEqualTo(before);
    assertThat(report.get("summary").get("bytesAfter").asLong()).isEqualTo(after);
    assertThat(report.get("summary").get("sparsity").asDouble()).isEqualTo(0.5);
    // 32,768 Linear weights go from 4 to 1 byte; 13,056 float parameters stay: 183,040 -> ~85,000 bytes of data.
    assertThat((double) before / after).isBetween(2.0, 2.3);
  }

  @Test
  void int4GroupJobOnBf16PacksEightCodesPerWordWithOneScalePerGroup() throws Exception {
    Map<String, float[]> tensors = llamaTensors();
    Path original = write(tmp.resolve("llama-bf16.safetensors"), tensors, SafetensorsDtype.BF16);
    String modelId = upload(original);

    JsonNode job = run("""
        {"modelId":"%s","steps":[{"type":"quantize","weights":{"bits":4,"granularity":"group","groupSize":32}}]}"""
        .formatted(modelId));
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    Path out = download(job.get("id").asString(), "model.safetensors");
    JsonNode header = header(out);
    assertConfig(JSON.readTree(header.get("__metadata__").get("quantization_config").asString()), 4, "group", 32);
    try (SafetensorsFile q = SafetensorsFile.open(out)) {
      for (Map.Entry<String, long[]> e : LINEAR.entrySet()) {
        String p = e.getKey();
        long rows = e.getValue()[0];
        long cols = e.getValue()[1];
        assertTensor(header, p + ".weight_packed", "I32", rows, cols / 8);
        assertTensor(header, p + ".weight_scale", "BF16", rows, cols / 32);
        assertTensor(header, p + ".weight_shape", "I64", 2);
        float[] bf16 = Floats.read(Floats.write(tensors.get(p + ".weight"), SafetensorsDtype.BF16),
            SafetensorsDtype.BF16, (int) (rows * cols));
        Decoded d = decode(q, p, 4, 32);
        for (int i = 0; i < bf16.length; i++) {
          assertThat(Math.abs(d.values()[i] - bf16[i])).as("%s[%d]", p, i).isLessThanOrEqualTo(d.scale()[i] / 2 * 1.0001f);
        }
      }
    }
    // 4 bits + one bf16 scale per 32 weights = 4.5 bits per weight, plus the 16-byte weight_shape.
    JsonNode report = JSON.readTree(Files.readString(download(job.get("id").asString(), "report.json")));
    for (JsonNode t : report.get("stepReports").get(0).get("tensors")) {
      assertThat(t.get("groupSize").asInt()).isEqualTo(32);
      assertThat(t.get("bitsPerWeight").asDouble()).isEqualTo(4.5 + 128.0 / t.get("parameters").asLong());
    }
  }

  @Test
  void stepsThatCannotApplyToACheckpointAreRefusedNamingTheField() throws Exception {
    String modelId = upload(write(tmp.resolve("v.safetensors"), llamaTensors(), SafetensorsDtype.F32));
    assertProblem(submit(modelId, "{\"type\":\"prune\",\"sparsity\":0.5,\"include\":[\"model\\\\.layers\\\\.7\\\\..*\"]}"),
        422, "steps[0].include[0]", "matches no F32/F16/BF16 tensor");
    assertProblem(submit(modelId, "{\"type\":\"prune\",\"method\":\"structured\",\"sparsity\":0.5}"),
        422, "steps[0].method", "needs the graph");
    assertProblem(submit(modelId, "{\"type\":\"quantize\",\"method\":\"gptq\",\"weights\":{\"bits\":4}}"),
        422, "steps[0]", "no graph to run");
    assertProblem(submit(modelId, "{\"type\":\"quantize\",\"include\":[\"model\\\\.norm\\\\.weight\"]}"),
        422, "steps[0].include", "is not a 2-D *.weight");
    assertProblem(submit(modelId, "{\"type\":\"quantize\"},{\"type\":\"prune\",\"sparsity\":0.5}"),
        422, "steps[0]", "quantize must be the last step");
    assertProblem(submit(modelId,
            "{\"type\":\"quantize\",\"weights\":{\"bits\":4,\"granularity\":\"group\",\"groupSize\":128}}"),
        422, "steps[0].weights.groupSize", "has 64 input columns, not a multiple of the group size 128");
    Api.Response nm = submit(modelId, "{\"type\":\"prune\",\"method\":\"nm\",\"n\":2,\"m\":4}");
    assertThat(nm.status()).as(nm.body()).isEqualTo(501);
    assertThat(nm.json().get("detail").asString()).startsWith("steps[0].method: nm pruning of safetensors");
    Api.Response bits = submit(modelId, "{\"type\":\"quantize\",\"weights\":{\"bits\":2}}");
    assertThat(bits.status()).as(bits.body()).isEqualTo(501);
    assertThat(bits.json().get("detail").asString()).startsWith("steps[0].weights.bits:");
  }

  /** Shard 1: embeddings, norm and attention; shard 2: the MLP, final norm and lm_head. */
  private Path shardedArchive(Map<String, float[]> tensors, boolean zip) throws IOException {
    Map<String, float[]> first = new LinkedHashMap<>();
    Map<String, float[]> second = new LinkedHashMap<>();
    tensors.forEach((n, v) -> (n.contains("mlp") || n.contains("model.norm") || n.startsWith("lm_head")
        ? second : first).put(n, v));
    String s1 = "model-00001-of-00002.safetensors";
    String s2 = "model-00002-of-00002.safetensors";
    Path a = write(tmp.resolve(s1), first, SafetensorsDtype.F32);
    Path b = write(tmp.resolve(s2), second, SafetensorsDtype.F32);
    Map<String, String> weightMap = new LinkedHashMap<>();
    first.keySet().forEach(n -> weightMap.put(n, s1));
    second.keySet().forEach(n -> weightMap.put(n, s2));
    long total = tensors.values().stream().mapToLong(v -> 4L * v.length).sum();
    byte[] index = JSON.writeValueAsBytes(Map.of("metadata", Map.of("total_size", total), "weight_map", weightMap));
    List<Archives.Entry> entries = List.of(
        Archives.Entry.file("tiny-llama/model.safetensors.index.json", index),
        Archives.Entry.file("tiny-llama/" + s1, a), Archives.Entry.file("tiny-llama/" + s2, b),
        Archives.Entry.file("tiny-llama/config.json",
            "{\"model_type\":\"llama\",\"hidden_size\":64}".getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    return zip ? Archives.zip(tmp.resolve("tiny-llama.zip"), entries) : Archives.tar(tmp.resolve("tiny-llama.tar"), entries);
  }

  @Test
  void shardedCheckpointJobWritesOneOutputShardPerInputShardAndANewIndex() throws Exception {
    Map<String, float[]> tensors = llamaTensors();
    Api.Response up = api.postFile("/v1/models", shardedArchive(tensors, true));
    assertThat(up.status()).as(up.body()).isEqualTo(201);
    assertThat(up.json().get("format").asString()).isEqualTo("safetensors");
    assertThat(up.json().get("tensorCount").asInt()).isEqualTo(tensors.size());
    long params = tensors.values().stream().mapToLong(v -> v.length).sum();
    assertThat(up.json().get("parameterCount").asLong()).isEqualTo(params);
    String modelId = up.json().get("id").asString();
    assertThat(api.get("/v1/models/" + modelId + "/tensors").json().findValuesAsString("name"))
        .containsExactlyInAnyOrderElementsOf(tensors.keySet());

    JsonNode job = run("""
        {"modelId":"%s","steps":[{"type":"prune","sparsity":0.5},{"type":"quantize"}]}""".formatted(modelId));
    assertThat(job.get("state").asString()).as(job.toString()).isEqualTo("SUCCEEDED");
    String id = job.get("id").asString();
    assertThat(artifactNames(id)).containsExactly("config.json", "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors", "model.safetensors.index.json", "quantization_config.json", "report.json");

    JsonNode index = JSON.readTree(Files.readString(download(id, "model.safetensors.index.json")));
    long dataBytes = 0;
    int mapped = 0;
    for (String shard : List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")) {
      Path file = download(id, shard);
      try (SafetensorsFile q = SafetensorsFile.open(file)) {
        for (SafetensorsFile.Entry e : q.entries()) {
          assertThat(index.get("weight_map").get(e.name()).asString()).as(e.name()).isEqualTo(shard);
          dataBytes += e.byteLength();
          mapped++;
        }
        for (String p : LINEAR.keySet()) {
          if (q.entries().stream().anyMatch(e -> e.name().equals(p + ".weight_packed"))) {
            float[] expected = prunedHalf(tensors.get(p + ".weight"));
            Decoded d = decode(q, p, 8, 0);
            for (int i = 0; i < expected.length; i++) {
              assertThat(Math.abs(d.values()[i] - expected[i])).isLessThanOrEqualTo(d.scale()[i] / 2 * 1.0001f);
            }
          }
        }
      }
    }
    // Each of the 4 Linear weights became weight_packed + weight_scale + weight_shape.
    assertThat(mapped).isEqualTo(tensors.size() + 4 * 2).isEqualTo(index.get("weight_map").size());
    assertThat(index.get("metadata").get("total_size").asLong()).isEqualTo(dataBytes);
    JsonNode config = JSON.readTree(Files.readString(download(id, "config.json")));
    assertThat(config.get("model_type").asString()).isEqualTo("llama");
    assertThat(config.get("hidden_size").asInt()).isEqualTo(64);
    assertConfig(config.get("quantization_config"), 8, "channel", null);
  }

  @Test
  void hostileArchivesAre422AndLeaveNothingBehind() throws Exception {
    long models = api.get("/v1/models?size=100").json().get("total").asLong();
    byte[] shard = Files.readAllBytes(write(tmp.resolve("one.safetensors"), Map.of("model.norm.weight", new float[64]),
        SafetensorsDtype.F32));
    List<Archives.Entry> many = new ArrayList<>();
    for (int i = 0; i < 51; i++) {
      many.add(Archives.Entry.file("notes-" + i + ".txt", new byte[1]));
    }
    Map<String, List<Archives.Entry>> cases = new LinkedHashMap<>();
    cases.put("archive entry '../model.safetensors' has an unsafe path",
        List.of(Archives.Entry.file("../model.safetensors", shard)));
    cases.put("tar entry 'model.safetensors' is a symbolic link",
        List.of(Archives.Entry.symlink("model.safetensors", "/etc/passwd")));
    cases.put("the archive has more than 50 entries", many);
    cases.put("shard 'model-00002-of-00002.safetensors' named by model.safetensors.index.json for tensor 'x' is not in "
        + "the archive", List.of(Archives.Entry.file("model.safetensors.index.json",
            "{\"weight_map\":{\"model.norm.weight\":\"a.safetensors\",\"x\":\"model-00002-of-00002.safetensors\"}}"
                .getBytes(java.nio.charset.StandardCharsets.UTF_8)), Archives.Entry.file("a.safetensors", shard)));
    for (Map.Entry<String, List<Archives.Entry>> c : cases.entrySet()) {
      Api.Response r = api.postFile("/v1/models", Archives.tar(tmp.resolve("bad-" + System.nanoTime() + ".tar"),
          c.getValue()));
      assertThat(r.status()).as(r.body()).isEqualTo(422);
      assertThat(r.problemType()).isEqualTo(PROBLEMS + "invalid-model");
      assertThat(r.json().get("detail").asString()).startsWith("sharded safetensors archive: " + c.getKey());
    }
    assertThat(api.get("/v1/models?size=100").json().get("total").asLong()).isEqualTo(models);
    // No scratch directory survives a refusal.
    try (var files = Files.walk(Path.of("target/test-data"))) {
      assertThat(files.filter(f -> f.getFileName().toString().startsWith("safetensors-shards-"))).isEmpty();
    }
  }

  // ---- decoding, independent of the pipeline: the compressed-tensors convention ----

  record Decoded(List<Long> shape, float[] values, float[] scale) {}

  /** Unpacks {@code prefix.weight_packed} ((code + 2^(bits-1)) in 32/bits fields per int32) times its scale. */
  static Decoded decode(SafetensorsFile q, String prefix, int bits, int groupSize) {
    ByteBuffer shapeBytes = q.tensorData(prefix + ".weight_shape");
    int rows = (int) shapeBytes.getLong(0);
    int cols = (int) shapeBytes.getLong(8);
    SafetensorsFile.Entry scaleEntry = q.entry(prefix + ".weight_scale");
    float[] scales = Floats.read(q.tensorData(prefix + ".weight_scale"), scaleEntry.dtype(),
        (int) scaleEntry.elementCount());
    ByteBuffer packed = q.tensorData(prefix + ".weight_packed").order(ByteOrder.LITTLE_ENDIAN);
    int perWord = 32 / bits;
    int words = (int) q.entry(prefix + ".weight_packed").shape().get(1).longValue();
    float[] values = new float[rows * cols];
    float[] step = new float[rows * cols];
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c++) {
        int word = packed.getInt((r * words + c / perWord) * 4);
        int code = ((word >>> (bits * (c % perWord))) & ((1 << bits) - 1)) - (1 << (bits - 1));
        float scale = groupSize == 0 ? scales[r] : scales[r * (cols / groupSize) + c / groupSize];
        values[r * cols + c] = code * scale;
        step[r * cols + c] = scale;
      }
    }
    return new Decoded(List.of((long) rows, (long) cols), values, step);
  }

  /** The tensor with the smaller half of its magnitudes set to zero (layer pruning to 0.5). */
  static float[] prunedHalf(float[] w) {
    float[] abs = new float[w.length];
    for (int i = 0; i < w.length; i++) {
      abs[i] = Math.abs(w[i]);
    }
    Arrays.sort(abs);
    float cut = abs[w.length / 2 - 1];
    float[] out = w.clone();
    for (int i = 0; i < w.length; i++) {
      if (Math.abs(w[i]) <= cut) {
        out[i] = 0;
      }
    }
    return out;
  }

  static JsonNode header(Path file) throws IOException {
    byte[] head = new byte[8];
    try (var in = Files.newInputStream(file)) {
      in.readNBytes(head, 0, 8);
      long n = ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).getLong();
      return JSON.readTree(in.readNBytes((int) n));
    }
  }

  static void assertTensor(JsonNode header, String name, String dtype, long... shape) {
    JsonNode t = header.get(name);
    assertThat(t).as(name).isNotNull();
    assertThat(t.get("dtype").asString()).as(name).isEqualTo(dtype);
    List<Long> actual = new ArrayList<>();
    t.get("shape").forEach(d -> actual.add(d.asLong()));
    assertThat(actual).as(name).containsExactly(Arrays.stream(shape).boxed().toArray(Long[]::new));
  }

  static void assertConfig(JsonNode config, int bits, String strategy, Integer groupSize) {
    assertThat(config.get("quant_method").asString()).isEqualTo("compressed-tensors");
    assertThat(config.get("format").asString()).isEqualTo("pack-quantized");
    assertThat(config.get("quantization_status").asString()).isEqualTo("compressed");
    JsonNode group = config.get("config_groups").get("group_0");
    assertThat(group.get("targets").toString()).isEqualTo("[\"Linear\"]");
    assertThat(group.get("input_activations").isNull()).isTrue();
    JsonNode w = group.get("weights");
    assertThat(w.get("num_bits").asInt()).isEqualTo(bits);
    assertThat(w.get("type").asString()).isEqualTo("int");
    assertThat(w.get("symmetric").asBoolean()).isTrue();
    assertThat(w.get("dynamic").asBoolean()).isFalse();
    assertThat(w.get("strategy").asString()).isEqualTo(strategy);
    if (groupSize == null) {
      assertThat(w.get("group_size").isNull()).isTrue();
    } else {
      assertThat(w.get("group_size").asInt()).isEqualTo(groupSize);
    }
  }

  // ---- HTTP ----

  private String upload(Path file) {
    Api.Response r = api.postFile("/v1/models", file);
    assertThat(r.status()).as(r.body()).isEqualTo(201);
    assertThat(r.json().get("format").asString()).isEqualTo("safetensors");
    return r.json().get("id").asString();
  }

  private Api.Response submit(String modelId, String steps) {
    return api.postJson("/v1/jobs", "{\"modelId\":\"" + modelId + "\",\"steps\":[" + steps + "]}");
  }

  private JsonNode run(String request) {
    Api.Response r = api.postJson("/v1/jobs", request);
    assertThat(r.status()).as(r.body()).isEqualTo(202);
    return api.awaitJob(r.json().get("id").asString(), TIMEOUT);
  }

  private List<String> artifactNames(String jobId) {
    List<String> names = new ArrayList<>();
    api.get("/v1/jobs/" + jobId).json().get("artifacts").forEach(a -> names.add(a.get("name").asString()));
    return names;
  }

  private Path download(String jobId, String name) {
    Path file = tmp.resolve(jobId + "-" + name);
    Api.Response r = api.download("/v1/jobs/" + jobId + "/artifacts/" + name, file);
    assertThat(r.status()).isEqualTo(200);
    return file;
  }

  private static void assertProblem(Api.Response r, int status, String field, String message) {
    assertThat(r.status()).as(r.body()).isEqualTo(status);
    assertThat(r.problemType()).isEqualTo(PROBLEMS + "validation-failed");
    assertThat(r.json().get("errors").findValuesAsString("field")).as(r.body()).contains(field);
    assertThat(r.body()).contains(message);
  }
}
