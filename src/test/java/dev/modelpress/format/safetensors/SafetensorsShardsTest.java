package dev.modelpress.format.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.modelpress.format.FormatException;
import dev.modelpress.format.ModelSummary;
import dev.modelpress.format.TensorInfo;
import dev.modelpress.format.archive.ArchiveReader;
import dev.modelpress.testing.Archives;
import dev.modelpress.testing.Archives.Entry;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsShardsTest {

  private static final ArchiveReader.Limits LIMITS = ArchiveReader.Limits.of(100, 1 << 20);

  @TempDir Path tmp;

  /** A shard of 2-D F32 tensors [4, 8] = 128 bytes each, filled with the tensor's index. */
  private byte[] shard(String... names) throws Exception {
    Path file = tmp.resolve("shard-" + System.nanoTime());
    List<SafetensorsWriter.Tensor> declared = new ArrayList<>();
    for (String n : names) {
      declared.add(new SafetensorsWriter.Tensor(n, SafetensorsDtype.F32, List.of(4L, 8L)));
    }
    try (SafetensorsWriter w = SafetensorsWriter.create(file, declared, Map.of("format", "pt"))) {
      for (String n : names) {
        w.write(n, ByteBuffer.allocate(128));
      }
    }
    byte[] bytes = Files.readAllBytes(file);
    Files.delete(file);
    return bytes;
  }

  private static byte[] index(String weightMap, long totalSize) {
    return ("{\"metadata\":{\"total_size\":" + totalSize + "},\"weight_map\":{" + weightMap + "}}")
        .getBytes(StandardCharsets.UTF_8);
  }

  private static final String MAP = "\"a.weight\":\"model-00001-of-00002.safetensors\","
      + "\"b.weight\":\"model-00001-of-00002.safetensors\",\"c.weight\":\"model-00002-of-00002.safetensors\"";

  private List<Entry> checkpoint(String dir) throws Exception {
    return List.of(
        new Entry(dir, '5', new byte[0], ""),
        Entry.file(dir + "/model.safetensors.index.json", index(MAP, 384)),
        Entry.file(dir + "/model-00001-of-00002.safetensors", shard("a.weight", "b.weight")),
        Entry.file(dir + "/model-00002-of-00002.safetensors", shard("c.weight")),
        Entry.file(dir + "/config.json", "{\"model_type\":\"llama\"}".getBytes(StandardCharsets.UTF_8)),
        Entry.file(dir + "/tokenizer.json", "{}".getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void zipAndTarCheckpointsExtractFlatWithEveryTensorInItsShard() throws Exception {
    for (Path archive : List.of(Archives.zip(tmp.resolve("c.zip"), checkpoint("llama")),
        Archives.tar(tmp.resolve("c.tar"), checkpoint("llama")))) {
      Path dir = tmp.resolve("x-" + archive.getFileName());
      SafetensorsShards.Checkpoint c = SafetensorsShards.extract(archive, dir, LIMITS);
      assertThat(c.shards()).extracting(p -> p.getFileName().toString())
          .containsExactly("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");
      assertThat(c.weightMap()).containsEntry("c.weight", "model-00002-of-00002.safetensors").hasSize(3);
      assertThat(c.config()).isEqualTo(dir.resolve("config.json"));
      // The tokenizer is not part of what a job needs: skipped.
      try (Stream<Path> files = Files.list(dir)) {
        assertThat(files.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder(
            "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
            "config.json");
      }
      ModelSummary s = c.summary();
      assertThat(s.tensors()).extracting(TensorInfo::name).containsExactly("a.weight", "b.weight", "c.weight");
      assertThat(s.parameterCount()).isEqualTo(96);
      assertThat(s.metadata()).containsEntry("shards", "2").containsEntry("total_size", "384");
    }
  }

  @Test
  void indexAndShardsThatDisagreeAreRefusedNamingTheTensorOrShard() throws Exception {
    byte[] one = shard("a.weight", "b.weight");
    byte[] two = shard("c.weight");
    String s1 = "model-00001-of-00002.safetensors";
    String s2 = "model-00002-of-00002.safetensors";
    assertRefused(List.of(Entry.file("model.safetensors.index.json", index(MAP, 384)), Entry.file(s1, one)),
        "shard '" + s2 + "' named by model.safetensors.index.json for tensor 'c.weight' is not in the archive");
    assertRefused(List.of(Entry.file("model.safetensors.index.json", index(MAP, 384)), Entry.file(s1, one),
        Entry.file(s2, shard("c.weight", "b.weight"))), "tensor 'b.weight' is in two shards");
    assertRefused(List.of(Entry.file("model.safetensors.index.json", index(MAP, 384)), Entry.file(s1, one),
        Entry.file(s2, shard("c.weight", "d.weight"))), "tensor 'd.weight' of shard '" + s2
        + "' is not in model.safetensors.index.json");
    assertRefused(List.of(Entry.file("model.safetensors.index.json", index(MAP, 384)), Entry.file(s1, one),
        Entry.file(s2, two), Entry.file("stray.safetensors", two)),
        "shard 'stray.safetensors' is in the archive but model.safetensors.index.json maps no tensor to it");
    assertRefused(List.of(Entry.file("model.safetensors.index.json", index(MAP, 999)), Entry.file(s1, one),
        Entry.file(s2, two)), "metadata.total_size 999 does not match the 384 bytes of tensor data");
    assertRefused(List.of(Entry.file("model.safetensors.index.json", index(MAP, 384)), Entry.file(s1, one),
        Entry.file(s2, "not safetensors".getBytes(StandardCharsets.UTF_8))), "shard '" + s2 + "': ");
    assertRefused(List.of(Entry.file(s1, one)), "the archive holds no *.safetensors.index.json");
    assertRefused(List.of(Entry.file("model.safetensors.index.json",
        index("\"a.weight\":\"../model.safetensors\"", 128))), "is not a shard file name");
  }

  @Test
  void hostileArchivesAreRefusedAndNothingLandsOutsideTheTarget() throws Exception {
    byte[] one = shard("a.weight");
    assertRefused(List.of(Entry.file("../evil.safetensors", one)), "archive entry '../evil.safetensors' has an "
        + "unsafe path");
    assertRefused(List.of(Entry.file("/etc/evil.safetensors", one)), "unsafe path");
    assertRefused(List.of(Entry.file("a/../../evil.safetensors", one)), "unsafe path");
    assertRefused(List.of(Entry.file("C:/evil.safetensors", one)), "unsafe path");
    assertRefused(List.of(Entry.file("a.safetensors", one), Entry.file("sub/b.safetensors", one)),
        "is in another directory");
    assertRefused(List.of(Entry.file("a.safetensors", one), Entry.file("./a.safetensors", one)), "appears twice");
    assertThat(tmp.getParent().resolve("evil.safetensors")).doesNotExist();

    Path link = Archives.tar(tmp.resolve("link.tar"), List.of(Entry.symlink("model.safetensors", "/etc/passwd")));
    assertThatThrownBy(() -> SafetensorsShards.extract(link, tmp.resolve("l"), LIMITS))
        .isInstanceOf(FormatException.class)
        .hasMessage("tar entry 'model.safetensors' is a symbolic link; only regular files and directories are "
            + "accepted");
  }

  @Test
  void entryAndByteLimitsHoldWhateverTheArchiveDeclares() throws Exception {
    List<Entry> many = new ArrayList<>();
    for (int i = 0; i < 101; i++) {
      many.add(Entry.file("f" + i + ".txt", new byte[1]));
    }
    assertRefused(many, "more than 100 entries");
    // 8 MiB of zeros deflates to a few KB: the cap counts bytes written, not the declared size.
    Path bomb = Archives.zip(tmp.resolve("bomb.zip"), List.of(Entry.file("model.safetensors", new byte[8 << 20])));
    assertThat(Files.size(bomb)).isLessThan(64 << 10);
    assertThatThrownBy(() -> SafetensorsShards.extract(bomb, tmp.resolve("b"), LIMITS))
        .isInstanceOf(FormatException.class).hasMessage("the archive expands to more than the limit of 1048576 bytes");
    Path truncated = tmp.resolve("cut.tar");
    byte[] full = Files.readAllBytes(Archives.tar(tmp.resolve("full.tar"),
        List.of(Entry.file("model.safetensors", new byte[4096]))));
    Files.write(truncated, java.util.Arrays.copyOf(full, 2048));
    assertThatThrownBy(() -> SafetensorsShards.extract(truncated, tmp.resolve("t"), LIMITS))
        .isInstanceOf(FormatException.class).hasMessageContaining("truncated");
  }

  private void assertRefused(List<Entry> entries, String message) throws Exception {
    for (boolean zip : new boolean[] {true, false}) {
      Path archive = tmp.resolve("bad-" + System.nanoTime() + (zip ? ".zip" : ".tar"));
      if (zip) {
        Archives.zip(archive, entries);
      } else {
        Archives.tar(archive, entries);
      }
      assertThatThrownBy(() -> SafetensorsShards.extract(archive, tmp.resolve("out-" + System.nanoTime()), LIMITS))
          .as(archive.getFileName().toString()).isInstanceOf(FormatException.class).hasMessageContaining(message);
    }
  }
}
