package dev.modelpress.format.safetensors;

import static dev.modelpress.format.safetensors.SafetensorsFile.quote;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.archive.ArchiveReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import tools.jackson.core.JacksonException;
import tools.jackson.core.StreamReadFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * A sharded safetensors checkpoint ({@code *.safetensors.index.json} + shards, as Hugging Face
 * writes them) delivered as a {@code .zip} or {@code .tar} archive: extraction with limits, and
 * validation of the index against the shards.
 *
 * <p>Extraction never trusts the archive: {@link ArchiveReader} checks entry names (relative, without
 * {@code ..}, a backslash or a drive letter) and types (regular files and directories only, no links
 * or devices), and caps the number of entries and the bytes written while reading, whatever the
 * archive declares. Only the index, the shards it may name ({@code *.safetensors}) and {@code
 * config.json} are written, flat, into the target directory; other files (tokenizer, README) are
 * skipped. All of them must sit in one directory of the archive.
 *
 * <p>Validation: every shard the index names exists and is a valid safetensors file; every tensor
 * of the index is in the shard it names and in no other; every tensor of a shard is in the index;
 * no shard is left unreferenced; {@code metadata.total_size}, when present, equals the tensor bytes.
 * Every failure is a {@link FormatException} naming the entry, shard or tensor at fault.
 */
public final class SafetensorsShards {

  /** The index name this service writes (and Hugging Face's default). */
  public static final String INDEX = "model.safetensors.index.json";

  /** Largest index accepted: real ones are a few hundred KB. */
  static final long MAX_INDEX_BYTES = 64L << 20;

  private static final JsonMapper JSON = JsonMapper.builder()
      .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

  /** Default caps on a checkpoint archive: 10,000 entries, 1 TiB written, no expansion-ratio bound. */
  public static final ArchiveReader.Limits DEFAULT_LIMITS = ArchiveReader.Limits.of(10_000, 1L << 40);

  /**
   * An extracted, validated checkpoint.
   *
   * @param dir where its files are
   * @param shards the shard files, ordered by name
   * @param weightMap tensor name to shard file name, in the index's order
   * @param config the archive's {@code config.json}, or {@code null}
   */
  public record Checkpoint(Path dir, List<Path> shards, Map<String, String> weightMap, Path config) {

    /** The model catalogue entry: every tensor of every shard, shard by shard. */
    public ModelSummary summary() throws IOException, FormatException {
      List<TensorInfo> tensors = new ArrayList<>();
      long parameters = 0;
      long bytes = 0;
      for (Path shard : shards) {
        try (SafetensorsFile f = SafetensorsFile.open(shard)) {
          for (SafetensorsFile.Entry e : f.entries()) {
            tensors.add(new TensorInfo(e.name(), e.dtype().name(), e.shape(), List.of()));
            parameters += e.elementCount();
            bytes += e.byteLength();
          }
        }
      }
      Map<String, String> metadata = new LinkedHashMap<>();
      metadata.put("shards", Integer.toString(shards.size()));
      metadata.put("total_size", Long.toString(bytes));
      return new ModelSummary("safetensors", parameters, tensors, List.of(), List.of(), Map.of(), 0, null, metadata);
    }
  }

  private SafetensorsShards() {}

  /**
   * Extracts the checkpoint from {@code archive} into {@code dir} (created if absent, expected
   * empty) and validates it. On failure {@code dir} may hold partial files: the caller owns it and
   * deletes it.
   */
  public static Checkpoint extract(Path archive, Path dir, ArchiveReader.Limits limits)
      throws IOException, FormatException {
    Files.createDirectories(dir);
    Extraction x = new Extraction(dir);
    ArchiveReader.read(archive, limits, x::entry);
    return validate(x);
  }

  /**
   * Writes {@code model.safetensors.index.json}-style JSON: {@code metadata.total_size} and the
   * {@code weight_map} in the given order.
   */
  public static void writeIndex(Path file, Map<String, String> weightMap, long totalSize) throws IOException {
    ObjectNode root = JSON.createObjectNode();
    root.putObject("metadata").put("total_size", totalSize);
    ObjectNode map = root.putObject("weight_map");
    weightMap.forEach(map::put);
    Files.write(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(root));
  }

  // ---- extraction ----

  /** Receives archive entries; keeps the ones a checkpoint needs. */
  private static final class Extraction {
    final Path dir;
    String home;
    String index;
    final Set<String> files = new HashSet<>();

    Extraction(Path dir) {
      this.dir = dir;
    }

    /** One checked entry: written flat into {@code dir} when the checkpoint needs it. */
    void entry(ArchiveReader.Entry entry) throws IOException, FormatException {
      String name = entry.name();
      if (entry.isDirectory()) {
        return;
      }
      int slash = name.lastIndexOf('/');
      String parent = slash < 0 ? "" : name.substring(0, slash);
      String base = name.substring(slash + 1);
      boolean wanted = base.endsWith(".safetensors") || base.endsWith(".safetensors.index.json")
          || base.equals("config.json");
      if (!wanted) {
        return;
      }
      if (home == null) {
        home = parent;
      } else if (!home.equals(parent)) {
        throw new FormatException("archive entry " + quote(entry.rawName()) + " is in another directory than "
            + quote(home.isEmpty() ? "(the archive root)" : home) + "; the index, its shards and config.json must "
            + "sit in one directory");
      }
      // One directory and unique entry names (checked by the reader) make base names unique.
      files.add(base);
      if (base.endsWith(".safetensors.index.json")) {
        if (index != null) {
          throw new FormatException("the archive holds two indexes, " + quote(index) + " and " + quote(base));
        }
        index = base;
      }
      entry.copyTo(dir.resolve(base), base.endsWith(".json") ? MAX_INDEX_BYTES : Long.MAX_VALUE);
    }
  }

  // ---- validation ----

  private static Checkpoint validate(Extraction x) throws IOException, FormatException {
    if (x.index == null) {
      throw new FormatException("the archive holds no *.safetensors.index.json: a sharded checkpoint needs its "
          + "index (upload a single .safetensors file as it is)");
    }
    JsonNode root;
    try {
      root = JSON.readTree(x.dir.resolve(x.index).toFile());
    } catch (JacksonException e) {
      throw new FormatException(x.index + " is not valid JSON: " + e.getOriginalMessage());
    }
    if (root == null || !root.isObject() || root.get("weight_map") == null || !root.get("weight_map").isObject()) {
      throw new FormatException(x.index + " has no weight_map object");
    }
    Map<String, String> weightMap = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : root.get("weight_map").properties()) {
      if (!e.getValue().isString()) {
        throw new FormatException(x.index + ": weight_map[" + quote(e.getKey()) + "] is not a string");
      }
      String shard = e.getValue().stringValue();
      if (shard.contains("/") || shard.contains("\\") || !shard.endsWith(".safetensors") || shard.equals(".safetensors")) {
        throw new FormatException(x.index + ": weight_map[" + quote(e.getKey()) + "] = " + quote(shard)
            + " is not a shard file name (a plain name ending in .safetensors)");
      }
      if (!x.files.contains(shard)) {
        throw new FormatException("shard " + quote(shard) + " named by " + x.index + " for tensor "
            + quote(e.getKey()) + " is not in the archive");
      }
      weightMap.put(e.getKey(), shard);
    }
    if (weightMap.isEmpty()) {
      throw new FormatException(x.index + ": weight_map is empty");
    }
    Set<String> shardNames = new TreeSet<>(weightMap.values());
    for (String f : x.files) {
      if (f.endsWith(".safetensors") && !shardNames.contains(f)) {
        throw new FormatException("shard " + quote(f) + " is in the archive but " + x.index + " maps no tensor to it");
      }
    }
    Map<String, String> seen = new HashMap<>();
    long bytes = 0;
    List<Path> shards = new ArrayList<>();
    for (String shard : shardNames) {
      Path file = x.dir.resolve(shard);
      shards.add(file);
      try (SafetensorsFile f = SafetensorsFile.open(file)) {
        for (SafetensorsFile.Entry e : f.entries()) {
          String earlier = seen.put(e.name(), shard);
          if (earlier != null) {
            throw new FormatException("tensor " + quote(e.name()) + " is in two shards, " + quote(earlier) + " and "
                + quote(shard));
          }
          String mapped = weightMap.get(e.name());
          if (mapped == null) {
            throw new FormatException("tensor " + quote(e.name()) + " of shard " + quote(shard) + " is not in "
                + x.index);
          }
          if (!mapped.equals(shard)) {
            throw new FormatException("tensor " + quote(e.name()) + " is in shard " + quote(shard) + " but "
                + x.index + " maps it to " + quote(mapped));
          }
          bytes += e.byteLength();
        }
      } catch (FormatException e) {
        if (e.getMessage().startsWith("tensor ")) {
          throw e;
        }
        throw new FormatException("shard " + quote(shard) + ": " + e.getMessage());
      }
    }
    for (Map.Entry<String, String> e : weightMap.entrySet()) {
      if (!seen.containsKey(e.getKey())) {
        throw new FormatException(x.index + " maps tensor " + quote(e.getKey()) + " to shard " + quote(e.getValue())
            + ", which does not hold it");
      }
    }
    JsonNode total = root.path("metadata").get("total_size");
    if (total != null && !total.isNull() && (!total.canConvertToLong() || total.asLong() != bytes)) {
      throw new FormatException(x.index + ": metadata.total_size " + total + " does not match the " + bytes
          + " bytes of tensor data in the shards");
    }
    Path config = x.files.contains("config.json") ? x.dir.resolve("config.json") : null;
    return new Checkpoint(x.dir, List.copyOf(shards), weightMap, config);
  }
}
