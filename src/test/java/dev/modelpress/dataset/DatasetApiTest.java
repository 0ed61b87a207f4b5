package dev.modelpress.dataset;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.format.npy.DType;
import dev.modelpress.format.npy.NdArray;
import dev.modelpress.format.npy.NpzWriter;
import dev.modelpress.testing.Api;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.test.context.ActiveProfiles;

/** Dataset upload: a real .npz is summarised; bombs, non-zips and inconsistent arrays are refused cleanly. */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
    properties = {"modelpress.worker.enabled=false", "modelpress.datasets.max-decoded-bytes=16MB"})
@ActiveProfiles("test")
class DatasetApiTest {

  private static final String PROBLEMS = "https://modelpress.dev/problems/";

  @LocalServerPort int port;
  @Autowired JdbcClient jdbc;
  @TempDir Path tmp;
  Api api;

  @BeforeEach
  void setUp() {
    api = new Api(port);
  }

  @Test
  void uploadsALabelledDataset() throws Exception {
    Path npz = tmp.resolve("data.npz");
    NpzWriter.write(npz, List.of(floats("x", 10, 4), longs("labels", 10)), true);
    Api.Response r = api.postFile("/v1/datasets?name=calib", npz);
    assertThat(r.status()).as(r.body()).isEqualTo(201);
    assertThat(r.json().get("samples").asLong()).isEqualTo(10);
    assertThat(r.json().get("hasLabels").asBoolean()).isTrue();
    assertThat(r.json().get("arrays").findValuesAsString("name")).containsExactlyInAnyOrder("x", "labels");
    String id = r.json().get("id").asString();
    assertThat(api.get("/v1/datasets/" + id).json().get("name").asString()).isEqualTo("calib");
    assertThat(api.get("/v1/datasets").json().get("total").asLong()).isPositive();
    assertThat(api.delete("/v1/datasets/" + id).status()).isEqualTo(204);
    assertThat(api.get("/v1/datasets/" + id).status()).isEqualTo(404);
  }

  @Test
  void refusesAZipBomb() throws Exception {
    // A tiny array header followed by 200 MB of zeros that deflate to almost nothing.
    Path bomb = tmp.resolve("bomb.npz");
    try (ZipOutputStream zip = new ZipOutputStream(Files.newOutputStream(bomb))) {
      zip.putNextEntry(new ZipEntry("x.npy"));
      String header = "{'descr': '<f4', 'fortran_order': False, 'shape': (50000000,), }";
      header = header + " ".repeat(118 - header.length()) + "\n";
      zip.write(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 118, 0});
      zip.write(header.getBytes());
      byte[] zeros = new byte[1 << 20];
      for (int i = 0; i < 200; i++) {
        zip.write(zeros);
      }
      zip.closeEntry();
    }
    assertThat(Files.size(bomb)).isLessThan(1 << 20);
    assertRejected(api.postFile("/v1/datasets", bomb), 422, "invalid-dataset");
  }

  @Test
  void refusesAFileThatIsNotAZip() throws Exception {
    assertRejected(api.postBytes("/v1/datasets", "not a zip at all".getBytes(), "application/octet-stream"),
        415, "unsupported-format");
  }

  @Test
  void refusesArraysWithDifferentSampleCounts() throws Exception {
    Path npz = tmp.resolve("bad.npz");
    NpzWriter.write(npz, List.of(floats("x", 10, 4), longs("labels", 9)), false);
    Api.Response r = api.postFile("/v1/datasets", npz);
    assertRejected(r, 422, "invalid-dataset");
    assertThat(r.json().get("detail").asString()).contains("labels");
  }

  private void assertRejected(Api.Response r, int status, String type) {
    assertThat(r.status()).as(r.body()).isEqualTo(status);
    assertThat(r.problemType()).isEqualTo(PROBLEMS + type);
    assertThat(jdbc.sql("select count(*) from datasets").query(Long.class).single()).isZero();
  }

  private static NdArray floats(String name, int n, int d) {
    ByteBuffer b = ByteBuffer.allocate(n * d * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < n * d; i++) {
      b.putFloat(i * 0.5f);
    }
    return new NdArray(name, DType.FLOAT32, new long[] {n, d}, b.flip());
  }

  private static NdArray longs(String name, int n) {
    ByteBuffer b = ByteBuffer.allocate(n * 8).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < n; i++) {
      b.putLong(i % 3);
    }
    return new NdArray(name, DType.INT64, new long[] {n}, b.flip());
  }
}
