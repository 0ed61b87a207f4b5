package dev.modelpress.format.safetensors;

import static dev.modelpress.format.safetensors.SafetensorsFile.quote;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.TensorInfo;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;
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
 * <p>Extraction never trusts the archive: entry names must be relative without {@code ..}, a
 * backslash or a drive letter; only regular files and directories are accepted (no links or
 * devices); the number of entries and the bytes written are capped while reading, whatever the
 * archive declares. Only the index, the shards it may name ({@code *.safetensors}) and {@code
 * config.json} are written, flat, into the target directory; other files (tokenizer, README) are
 * skipped. All of them must sit in one directory of the archive.
 *
 * <p>Validation: every shard the index names exists and is a valid safetensors file; every tensor
 * of the index is in the shard it names and in no other; every tensor of a shard is in the index;
 * no shard is left unreferenced; {@code metadata.total_size}, when present, equals the tensor bytes.
 * Every failure is a {@link FormatException} naming the entry, shard or tensor at fault.
 *
 * <p>Archive reading lives here, under its own name, so an archive upload of another format (ONNX
 * with external data) can sit beside it.
 */
public final class SafetensorsShards {

  /** The index name this service writes (and Hugging Face's default). */
  public static final String INDEX = "model.safetensors.index.json";

  /** Largest index accepted: real ones are a few hundred KB. */
  static final long MAX_INDEX_BYTES = 64L << 20;

  private static final JsonMapper JSON = JsonMapper.builder()
      .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

  /**
   * Caps on what an archive may hold.
   *
   * @param maxEntries entries of any kind (files, directories, headers)
   * @param maxBytes bytes written while extracting
   */
  public record Limits(int maxEntries, long maxBytes) {
    /** 10,000 entries, 1 TiB. */
    public static final Limits DEFAULT = new Limits(10_000, 1L << 40);
  }

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

  /** Which archive a file is, from its first bytes: {@code "zip"}, {@code "tar"}, or {@code null}. */
  public static String archiveKind(Path file) throws IOException {
    byte[] head = new byte[512];
    int n;
    try (InputStream in = Files.newInputStream(file)) {
      n = in.readNBytes(head, 0, head.length);
    }
    if (n >= 4 && head[0] == 'P' && head[1] == 'K' && (head[2] == 3 || head[2] == 5) && (head[3] == 4 || head[3] == 6)) {
      return "zip";
    }
    if (n == 512 && new String(head, 257, 5, StandardCharsets.US_ASCII).equals("ustar")) {
      return "tar";
    }
    return null;
  }

  /**
   * Extracts the checkpoint from {@code archive} into {@code dir} (created if absent, expected
   * empty) and validates it. On failure {@code dir} may hold partial files: the caller owns it and
   * deletes it.
   */
  public static Checkpoint extract(Path archive, Path dir, Limits limits) throws IOException, FormatException {
    String kind = archiveKind(archive);
    if (kind == null) {
      throw new FormatException("not a .zip or .tar archive");
    }
    Files.createDirectories(dir);
    Extraction x = new Extraction(dir, limits);
    if (kind.equals("zip")) {
      readZip(archive, x);
    } else {
      try (InputStream in = Files.newInputStream(archive)) {
        new TarReader(in).forEach(x);
      }
    }
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
    final Limits limits;
    int entries;
    long written;
    String home;
    String index;
    final Set<String> files = new HashSet<>();

    Extraction(Path dir, Limits limits) {
      this.dir = dir;
      this.limits = limits;
    }

    /** One entry; {@code data} is positioned at its content. */
    void entry(String rawName, boolean directory, InputStream data) throws IOException, FormatException {
      if (++entries > limits.maxEntries()) {
        throw new FormatException("the archive has more than " + limits.maxEntries() + " entries");
      }
      String name = safeName(rawName);
      if (directory || name.isEmpty()) {
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
        throw new FormatException("archive entry " + quote(rawName) + " is in another directory than "
            + quote(home.isEmpty() ? "(the archive root)" : home) + "; the index, its shards and config.json must "
            + "sit in one directory");
      }
      if (!files.add(base)) {
        throw new FormatException("archive entry " + quote(rawName) + " appears twice");
      }
      if (base.endsWith(".safetensors.index.json")) {
        if (index != null) {
          throw new FormatException("the archive holds two indexes, " + quote(index) + " and " + quote(base));
        }
        index = base;
      }
      boolean json = base.endsWith(".json");
      try (OutputStream out = Files.newOutputStream(dir.resolve(base), StandardOpenOption.CREATE_NEW,
          StandardOpenOption.WRITE)) {
        byte[] buffer = new byte[1 << 16];
        long copied = 0;
        int n;
        while ((n = data.read(buffer)) > 0) {
          copied += n;
          if (json && copied > MAX_INDEX_BYTES) {
            throw new FormatException("archive entry " + quote(rawName) + " is larger than " + MAX_INDEX_BYTES
                + " bytes");
          }
          if (written + copied > limits.maxBytes()) {
            throw new FormatException("the archive expands to more than the limit of " + limits.maxBytes()
                + " bytes");
          }
          out.write(buffer, 0, n);
        }
        written += copied;
      }
    }
  }

  /** The entry name made relative and checked: no absolute path, drive, backslash, NUL or {@code ..}. */
  static String safeName(String raw) throws FormatException {
    String name = raw;
    while (name.startsWith("./")) {
      name = name.substring(2);
    }
    if (name.endsWith("/")) {
      name = name.substring(0, name.length() - 1);
    }
    boolean bad = name.startsWith("/") || name.contains("\\") || name.indexOf('\0') >= 0
        || (name.length() >= 2 && name.charAt(1) == ':');
    for (String part : name.split("/", -1)) {
      bad |= part.equals("..") || (part.isEmpty() && !name.isEmpty());
    }
    if (bad) {
      throw new FormatException("archive entry " + quote(raw) + " has an unsafe path: entries must be relative, "
          + "without '..', backslashes or drive letters");
    }
    return name;
  }

  private static void readZip(Path archive, Extraction x) throws IOException, FormatException {
    try (ZipFile zip = new ZipFile(archive.toFile())) {
      if (zip.size() > x.limits.maxEntries()) {
        throw new FormatException("the archive has more than " + x.limits.maxEntries() + " entries (" + zip.size()
            + ")");
      }
      Enumeration<? extends ZipEntry> entries = zip.entries();
      while (entries.hasMoreElements()) {
        ZipEntry e = entries.nextElement();
        try (InputStream in = zip.getInputStream(e)) {
          x.entry(e.getName(), e.isDirectory(), in);
        }
      }
    } catch (ZipException e) {
      throw new FormatException("the zip archive is damaged: " + e.getMessage());
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

  // ---- tar ----

  /** A POSIX ustar / pax reader: regular files, directories, pax and GNU long-name headers only. */
  private static final class TarReader {
    private final InputStream in;
    private long offset;

    TarReader(InputStream in) {
      this.in = in;
    }

    void forEach(Extraction x) throws IOException, FormatException {
      byte[] header = new byte[512];
      String longName = null;
      long paxSize = -1;
      while (true) {
        long at = offset;
        if (!readBlock(header)) {
          throw new FormatException("the tar archive ends without its end-of-archive blocks (truncated?)");
        }
        if (allZero(header)) {
          return;
        }
        if (checksum(header) != octal(header, 148, 8, at)) {
          throw new FormatException("tar header at byte " + at + " has a bad checksum (not a tar archive, or damaged)");
        }
        char type = (char) header[156];
        long size = paxSize >= 0 ? paxSize : size(header, at);
        String name = longName != null ? longName : name(header);
        longName = null;
        paxSize = -1;
        switch (type) {
          case '0', '\0', '7' -> {
            BoundedInput data = new BoundedInput(size);
            try {
              x.entry(name, false, data);
            } catch (java.io.EOFException e) {
              throw new FormatException(e.getMessage());
            }
            skip(data.left);
            skip(padding(size));
            continue;
          }
          case '5' -> x.entry(name, true, InputStream.nullInputStream());
          case 'x', 'L' -> {
            if (++x.entries > x.limits.maxEntries()) {
              throw new FormatException("the archive has more than " + x.limits.maxEntries() + " entries");
            }
            if (size > 1 << 20) {
              throw new FormatException("tar " + (type == 'x' ? "pax" : "long-name") + " header at byte " + at
                  + " is " + size + " bytes");
            }
            byte[] body = readFully((int) size);
            skip(padding(size));
            if (type == 'L') {
              int end = 0;
              while (end < body.length && body[end] != 0) {
                end++;
              }
              longName = new String(body, 0, end, StandardCharsets.UTF_8);
            } else {
              Map<String, String> pax = pax(body, at);
              longName = pax.get("path");
              if (pax.containsKey("size")) {
                try {
                  paxSize = Long.parseLong(pax.get("size"));
                } catch (NumberFormatException e) {
                  throw new FormatException("tar pax header at byte " + at + " has a bad size");
                }
              }
            }
            continue;
          }
          case 'g' -> {
            skip(size);
            skip(padding(size));
            continue;
          }
          default -> throw new FormatException("tar entry " + quote(name) + " is a "
              + switch (type) {
                case '1' -> "hard link";
                case '2' -> "symbolic link";
                case '3', '4' -> "device";
                case '6' -> "FIFO";
                default -> "entry of type '" + type + "'";
              } + "; only regular files and directories are accepted");
        }
        skip(size + padding(size));
      }
    }

    private static long padding(long size) {
      return (512 - size % 512) % 512;
    }

    private static Map<String, String> pax(byte[] body, long at) throws FormatException {
      Map<String, String> out = new HashMap<>();
      int i = 0;
      while (i < body.length) {
        int space = i;
        while (space < body.length && body[space] != ' ') {
          space++;
        }
        int length;
        try {
          length = Integer.parseInt(new String(body, i, space - i, StandardCharsets.US_ASCII));
        } catch (NumberFormatException e) {
          throw new FormatException("tar pax header at byte " + at + " is malformed");
        }
        if (length <= space - i + 1 || i + length > body.length) {
          throw new FormatException("tar pax header at byte " + at + " is malformed");
        }
        String record = new String(body, space + 1, i + length - space - 2, StandardCharsets.UTF_8);
        int eq = record.indexOf('=');
        if (eq > 0) {
          out.put(record.substring(0, eq), record.substring(eq + 1));
        }
        i += length;
      }
      return out;
    }

    private static String name(byte[] h) {
      String name = cString(h, 0, 100);
      String prefix = new String(h, 257, 5, StandardCharsets.US_ASCII).equals("ustar") ? cString(h, 345, 155) : "";
      return prefix.isEmpty() ? name : prefix + "/" + name;
    }

    private static String cString(byte[] h, int from, int length) {
      int end = from;
      while (end < from + length && h[end] != 0) {
        end++;
      }
      return new String(h, from, end - from, StandardCharsets.UTF_8);
    }

    private static long size(byte[] h, long at) throws FormatException {
      if ((h[124] & 0x80) != 0) {
        // GNU base-256 for sizes of 8 GiB and more.
        long v = 0;
        for (int i = 125; i < 136; i++) {
          if ((v >>> 55) != 0) {
            throw new FormatException("tar header at byte " + at + " declares an impossible size");
          }
          v = (v << 8) | (h[i] & 0xff);
        }
        return v;
      }
      return octal(h, 124, 12, at);
    }

    private static long octal(byte[] h, int from, int length, long at) throws FormatException {
      long v = 0;
      int i = from;
      while (i < from + length && h[i] == ' ') {
        i++;
      }
      boolean any = false;
      for (; i < from + length && h[i] != 0 && h[i] != ' '; i++) {
        if (h[i] < '0' || h[i] > '7' || v >= (1L << 60)) {
          throw new FormatException("tar header at byte " + at + " has a bad number field");
        }
        v = v * 8 + (h[i] - '0');
        any = true;
      }
      if (!any) {
        throw new FormatException("tar header at byte " + at + " has an empty number field");
      }
      return v;
    }

    private static long checksum(byte[] h) {
      long sum = 0;
      for (int i = 0; i < 512; i++) {
        sum += (i >= 148 && i < 156) ? ' ' : (h[i] & 0xff);
      }
      return sum;
    }

    private static boolean allZero(byte[] h) {
      for (byte b : h) {
        if (b != 0) {
          return false;
        }
      }
      return true;
    }

    private boolean readBlock(byte[] block) throws IOException {
      int n = in.readNBytes(block, 0, 512);
      offset += n;
      return n == 512;
    }

    private byte[] readFully(int n) throws IOException, FormatException {
      byte[] b = in.readNBytes(n);
      offset += b.length;
      if (b.length != n) {
        throw new FormatException("the tar archive is truncated at byte " + offset);
      }
      return b;
    }

    private void skip(long n) throws IOException, FormatException {
      long left = n;
      while (left > 0) {
        long k = in.skip(left);
        if (k <= 0) {
          if (in.read() < 0) {
            throw new FormatException("the tar archive is truncated at byte " + offset);
          }
          k = 1;
        }
        left -= k;
        offset += k;
      }
    }

    /** The current entry's data: at most {@code left} bytes, and a truncated archive is an error. */
    private final class BoundedInput extends InputStream {
      long left;

      BoundedInput(long size) {
        this.left = size;
      }

      @Override
      public int read() throws IOException {
        byte[] one = new byte[1];
        return read(one, 0, 1) <= 0 ? -1 : one[0] & 0xff;
      }

      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        if (left == 0) {
          return -1;
        }
        int n = in.read(b, off, (int) Math.min(len, left));
        if (n < 0) {
          throw new java.io.EOFException("the tar archive is truncated at byte " + offset);
        }
        left -= n;
        offset += n;
        return n;
      }
    }
  }
}
