package dev.modelpress.format.npy;

import dev.modelpress.format.FormatException;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.zip.CRC32;
import java.util.zip.CheckedInputStream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * Reads a NumPy {@code .npz} archive (as {@code np.savez} and {@code np.savez_compressed} write it)
 * and summarizes it as a data set.
 *
 * <p>Zip archives are a classic attack surface, so nothing the archive declares is trusted: entry
 * names must be plain {@code name.npy}, each entry is read through the npy reader, which stops at
 * the size its header declares and refuses sizes beyond the remaining budget, and an entry holding
 * more bytes than its header declares is rejected after inflating a single extra byte. A deflate
 * bomb therefore costs at most the budget, never its inflated size.
 */
public final class NpzReader {

  /** More entries than any real data set has; bounds per-entry overhead for hostile archives. */
  static final int MAX_ENTRIES = 10_000;

  private NpzReader() {}

  /**
   * Reads every array of the archive, in archive order.
   *
   * @param maxTotalBytes the most data bytes all arrays together may hold
   * @throws FormatException not a zip archive, a damaged one, an entry that is not a safely named
   *     {@code .npy} array, a duplicate name, an invalid array, or more data than {@code
   *     maxTotalBytes}
   */
  public static List<NdArray> read(Path file, long maxTotalBytes)
      throws IOException, FormatException {
    ZipFile zip;
    try {
      zip = new ZipFile(file.toFile());
    } catch (ZipException | EOFException | IllegalArgumentException e) {
      // EOFException: a central directory whose declared offsets run past the end of the file
      // (found by NpzReaderFuzzTest); as damaged as any other unreadable archive.
      throw new FormatException("not a valid npz file: it cannot be read as a zip archive");
    }
    try (zip) {
      if (zip.size() > MAX_ENTRIES) {
        throw new FormatException(
            "npz archive has " + zip.size() + " entries, more than the limit of " + MAX_ENTRIES);
      }
      List<NdArray> arrays = new ArrayList<>();
      Set<String> names = new HashSet<>();
      long budget = maxTotalBytes;
      Enumeration<? extends ZipEntry> entries = zip.entries();
      while (entries.hasMoreElements()) {
        ZipEntry entry = entries.nextElement();
        String name = arrayName(entry.getName());
        if (!names.add(name)) {
          throw new FormatException(
              "npz entry " + NdArrays.quote(entry.getName()) + " appears more than once");
        }
        NdArray array = readEntry(zip, entry, name, budget);
        budget -= array.data().remaining();
        arrays.add(array);
      }
      return arrays;
    }
  }

  /**
   * Checks that the arrays form a data set and summarizes it: at least one array, no scalars, all
   * sharing the first dimension (the sample count); an array named {@code labels} must be a 1-D
   * integer array and marks the set as labelled.
   */
  public static DatasetSummary summarize(List<NdArray> arrays) throws FormatException {
    if (arrays.isEmpty()) {
      throw new FormatException("data set holds no arrays");
    }
    List<DatasetSummary.ArraySummary> summaries = new ArrayList<>();
    NdArray first = null;
    boolean hasLabels = false;
    for (NdArray a : arrays) {
      long[] shape = a.shape();
      String array = "array " + NdArrays.quote(a.name());
      if (shape.length == 0) {
        throw new FormatException(
            array + " is a scalar; every array needs a first dimension of samples");
      }
      if (first == null) {
        first = a;
      } else if (first.shape()[0] != shape[0]) {
        throw new FormatException(
            "arrays "
                + NdArrays.quote(first.name())
                + " and "
                + NdArrays.quote(a.name())
                + " disagree on the number of samples (first dimension): "
                + first.shape()[0]
                + " and "
                + shape[0]);
      }
      if (a.name().equals("labels")) {
        if (shape.length != 1 || !isInteger(a.dtype())) {
          throw new FormatException(
              "array 'labels' must be a 1-D integer array of class indices, is "
                  + typeName(a.dtype())
                  + " with shape "
                  + NdArrays.shapeString(shape));
        }
        hasLabels = true;
      }
      List<Long> dims = new ArrayList<>(shape.length);
      for (long d : shape) {
        dims.add(d);
      }
      summaries.add(new DatasetSummary.ArraySummary(a.name(), typeName(a.dtype()), dims));
    }
    return new DatasetSummary(summaries, first.shape()[0], hasLabels);
  }

  /** The NumPy name of a dtype: {@code float32}, {@code int64}, {@code bool}. */
  static String typeName(DType dtype) {
    return dtype.name().toLowerCase(Locale.ROOT);
  }

  private static boolean isInteger(DType dtype) {
    return switch (dtype) {
      case INT8, INT16, INT32, INT64, UINT8 -> true;
      default -> false;
    };
  }

  private static String arrayName(String entryName) throws FormatException {
    String quoted = NdArrays.quote(entryName);
    if (!entryName.endsWith(".npy")) {
      throw new FormatException("npz entry " + quoted + " is not a .npy array");
    }
    String name = entryName.substring(0, entryName.length() - 4);
    if (!NdArrays.isSafeName(name)) {
      throw new FormatException(
          "npz entry "
              + quoted
              + " has an unsafe name (empty, a path, '..' or control characters)");
    }
    return name;
  }

  private static NdArray readEntry(ZipFile zip, ZipEntry entry, String name, long budget)
      throws IOException, FormatException {
    String quoted = NdArrays.quote(entry.getName());
    CRC32 crc = new CRC32();
    try (InputStream in = new CheckedInputStream(zip.getInputStream(entry), crc)) {
      NdArray array = NpyReader.read(name, in, budget);
      if (in.read() != -1) {
        throw new FormatException(
            "npz entry " + quoted + " holds more bytes than its npy header declares");
      }
      if (entry.getCrc() != -1 && crc.getValue() != entry.getCrc()) {
        throw new FormatException("npz entry " + quoted + " is corrupt (CRC mismatch)");
      }
      return array;
    } catch (ZipException | EOFException e) {
      // Damaged compressed data or an entry cut short by a truncated archive.
      throw new FormatException("npz entry " + quoted + " is damaged or truncated");
    }
  }
}
