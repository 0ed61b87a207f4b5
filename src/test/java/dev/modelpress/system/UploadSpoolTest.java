package dev.modelpress.system;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.util.unit.DataSize;

/** The spool streams, hashes and enforces the size limit on bodies of unknown length. */
class UploadSpoolTest {

  @TempDir Path dir;

  @Test
  void spoolsAndHashesOnTheWay() throws Exception {
    byte[] data = new byte[300_000];
    new Random(1).nextBytes(data);
    UploadSpool spool = new UploadSpool(dir, DataSize.ofMegabytes(1));
    try (UploadSpool.Spooled s = spool.spool(new ByteArrayInputStream(data))) {
      assertThat(s.size()).isEqualTo(data.length);
      assertThat(Files.readAllBytes(s.file())).isEqualTo(data);
      assertThat(s.sha256()).isEqualTo(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data)));
    }
    assertThat(Files.list(dir)).as("closing deletes the spool file").isEmpty();
  }

  @Test
  void stopsReadingAnUndeclaredBodyOnceItPassesTheLimit() throws IOException {
    UploadSpool spool = new UploadSpool(dir, DataSize.ofKilobytes(64));
    CountingEndlessStream endless = new CountingEndlessStream();
    assertThatThrownBy(() -> spool.spool(endless))
        .isInstanceOf(ApiProblem.class)
        .satisfies(e -> assertThat(((ApiProblem) e).kind()).isEqualTo(ApiProblem.Kind.PAYLOAD_TOO_LARGE));
    assertThat(endless.read).as("bytes read before giving up").isLessThan(64 * 1024 + (1 << 16) + 1);
    assertThat(Files.list(dir)).as("no partial file is left").isEmpty();
  }

  /** A body that never ends, as a chunked upload of a huge file looks to the server. */
  private static final class CountingEndlessStream extends InputStream {
    long read;

    @Override
    public int read() {
      read++;
      return 0;
    }

    @Override
    public int read(byte[] b, int off, int len) {
      read += len;
      return len;
    }
  }
}
