package dev.modelpress.format.npy;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Writes arrays as a NumPy {@code .npz} archive, one {@code name.npy} entry each, stored (like
 * {@code np.savez}) or deflated (like {@code np.savez_compressed}). The archive is written beside
 * the target under a temporary name and moved into place when complete.
 */
public final class NpzWriter {

  private NpzWriter() {}

  /**
   * Writes the archive.
   *
   * @throws IllegalArgumentException an array name is unsafe or used twice, or an array's data does
   *     not match its shape
   */
  public static void write(Path file, List<NdArray> arrays, boolean compressed) throws IOException {
    Set<String> names = new HashSet<>();
    for (NdArray a : arrays) {
      if (!NdArrays.isSafeName(a.name())) {
        throw new IllegalArgumentException(
            "array name " + NdArrays.quote(a.name()) + " is not safe as an npz entry");
      }
      if (!names.add(a.name())) {
        throw new IllegalArgumentException("array " + NdArrays.quote(a.name()) + " appears twice");
      }
      NpyWriter.checkedData(a);
    }

    // Beside the target so the final move is a rename; not createTempFile, whose owner-only
    // permissions would carry over to the result.
    Path temp =
        file.toAbsolutePath()
            .resolveSibling("." + file.getFileName() + "." + UUID.randomUUID() + ".partial");
    try {
      try (ZipOutputStream zip =
          new ZipOutputStream(
              new BufferedOutputStream(
                  Files.newOutputStream(
                      temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
                  1 << 16))) {
        for (NdArray a : arrays) {
          ZipEntry entry = new ZipEntry(a.name() + ".npy");
          if (!compressed) {
            // A stored entry needs its size and CRC before its data.
            byte[] header = NpyWriter.header(a);
            ByteBuffer data = a.data();
            CRC32 crc = new CRC32();
            crc.update(header);
            crc.update(data.duplicate());
            entry.setMethod(ZipEntry.STORED);
            entry.setSize(header.length + (long) data.remaining());
            entry.setCompressedSize(entry.getSize());
            entry.setCrc(crc.getValue());
          }
          zip.putNextEntry(entry);
          NpyWriter.write(a, zip);
          zip.closeEntry();
        }
      }
      try {
        Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING);
      }
    } finally {
      Files.deleteIfExists(temp);
    }
  }
}
