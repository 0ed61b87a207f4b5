package dev.modelpress.format.npy;

import dev.modelpress.format.FormatException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The parsed header of a {@code .npy} array: element type and C-order shape.
 *
 * <p>The header is a Python dict literal such as {@code {'descr': '<f4', 'fortran_order': False,
 * 'shape': (3, 4), }}. NumPy reads it with {@code ast.literal_eval}; here a small strict parser
 * accepts exactly the literals that can appear (strings, {@code True}/{@code False}, tuples of
 * integers), so nothing in a header is ever evaluated.
 */
record NpyHeader(DType dtype, long[] shape, long byteLength) {

  static NpyHeader parse(String name, String text) throws FormatException {
    String array = "array " + NdArrays.quote(name);
    Map<String, Object> dict = new Parser(array, text).dict();
    if (!dict.keySet().equals(Set.of("descr", "fortran_order", "shape"))) {
      throw new FormatException(
          array
              + ": npy header must have exactly the keys descr, fortran_order and shape, has "
              + dict.keySet());
    }
    if (!(dict.get("shape") instanceof long[] shape)) {
      throw new FormatException(array + ": npy header shape is not a tuple of integers");
    }
    if (!(dict.get("fortran_order") instanceof Boolean fortran)) {
      throw new FormatException(array + ": npy header fortran_order is not True or False");
    }
    if (!(dict.get("descr") instanceof String descriptor)) {
      throw new FormatException(array + ": npy header descr is not a string");
    }
    DType dtype = dtype(array, descriptor);
    for (int i = 0; i < shape.length; i++) {
      if (shape[i] < 0) {
        throw new FormatException(
            array + ": shape " + NdArrays.shapeString(shape) + " has a negative dimension");
      }
    }
    // Fortran order only changes the layout when two or more dimensions exceed 1.
    if (fortran && nonTrivialDims(shape) > 1) {
      throw new FormatException(
          array
              + ": stored in Fortran order; save it in C order"
              + " (np.save(f, np.ascontiguousarray(a)))");
    }
    long bytes;
    try {
      bytes = dtype.size();
      for (long d : shape) {
        bytes = Math.multiplyExact(bytes, d);
      }
    } catch (ArithmeticException e) {
      throw new FormatException(array + ": shape " + NdArrays.shapeString(shape) + " is too large");
    }
    return new NpyHeader(dtype, shape, bytes);
  }

  private static int nonTrivialDims(long[] shape) {
    int n = 0;
    for (long d : shape) {
      if (d > 1) {
        n++;
      }
    }
    return n;
  }

  /** Maps a descriptor like {@code <f4} to a DType, refusing what cannot be read safely. */
  static DType dtype(String array, String descriptor) throws FormatException {
    String quoted = "'" + NdArrays.abbreviate(descriptor) + "'";
    if (descriptor.length() >= 2 && descriptor.charAt(1) == 'O') {
      throw new FormatException(
          array + ": dtype " + quoted + " holds pickled Python objects, which are never loaded");
    }
    if (descriptor.length() < 3 || "<>|=".indexOf(descriptor.charAt(0)) < 0) {
      throw new FormatException(array + ": unsupported dtype " + quoted);
    }
    char order = descriptor.charAt(0);
    String typeCode = descriptor.substring(1);
    DType dtype =
        switch (typeCode) {
          case "f2" -> DType.FLOAT16;
          case "f4" -> DType.FLOAT32;
          case "f8" -> DType.FLOAT64;
          case "i1" -> DType.INT8;
          case "i2" -> DType.INT16;
          case "i4" -> DType.INT32;
          case "i8" -> DType.INT64;
          case "u1" -> DType.UINT8;
          case "b1" -> DType.BOOL;
          default -> null;
        };
    if (dtype == null) {
      throw new FormatException(
          array
              + ": unsupported dtype "
              + quoted
              + "; supported are float16/32/64, int8/16/32/64, uint8 and bool");
    }
    if (dtype.size() > 1) {
      switch (order) {
        case '>' ->
            throw new FormatException(
                array
                    + ": dtype "
                    + quoted
                    + " is big-endian; save it little-endian (a.astype('<"
                    + typeCode
                    + "'))");
        case '=' ->
            throw new FormatException(
                array
                    + ": dtype "
                    + quoted
                    + " has native byte order, which is ambiguous in a file");
        case '|' ->
            throw new FormatException(
                array + ": dtype " + quoted + " needs a byte order for a multi-byte type");
        default -> {}
      }
    }
    return dtype;
  }

  /** A recursive-descent parser for the dict literal; values are String, Boolean or long[]. */
  private static final class Parser {
    private final String array;
    private final String s;
    private int at;

    Parser(String array, String s) {
      this.array = array;
      this.s = s;
    }

    Map<String, Object> dict() throws FormatException {
      skipSpace();
      expect('{');
      Map<String, Object> dict = new HashMap<>();
      skipSpace();
      while (peek() != '}') {
        String key = string();
        skipSpace();
        expect(':');
        skipSpace();
        Object value = value(key);
        if (dict.put(key, value) != null) {
          throw error("duplicate key '" + NdArrays.abbreviate(key) + "'");
        }
        skipSpace();
        if (peek() == ',') {
          at++;
          skipSpace();
        } else if (peek() != '}') {
          throw error("expected ',' or '}'");
        }
      }
      at++;
      skipSpace();
      if (at != s.length()) {
        throw error("unexpected text after the closing '}'");
      }
      return dict;
    }

    private Object value(String key) throws FormatException {
      char c = peek();
      if (c == '\'' || c == '"') {
        return string();
      }
      if (c == '(') {
        return tuple();
      }
      if (c == '[' && key.equals("descr")) {
        // A list of fields: a structured (record) dtype, which has no place in model inputs.
        throw new FormatException(
            array + ": structured dtypes (records with fields) are not supported");
      }
      if (s.startsWith("True", at)) {
        at += 4;
        return Boolean.TRUE;
      }
      if (s.startsWith("False", at)) {
        at += 5;
        return Boolean.FALSE;
      }
      throw error("unexpected value");
    }

    private long[] tuple() throws FormatException {
      expect('(');
      List<Long> dims = new ArrayList<>();
      boolean trailingComma = false;
      skipSpace();
      while (peek() != ')') {
        dims.add(integer());
        skipSpace();
        trailingComma = false;
        if (peek() == ',') {
          at++;
          trailingComma = true;
          skipSpace();
        } else if (peek() != ')') {
          throw error("expected ',' or ')' in shape");
        }
      }
      at++;
      if (dims.size() == 1 && !trailingComma) {
        // In Python "(3)" is the integer 3, not a tuple.
        throw error("shape (n) must be written (n,)");
      }
      return dims.stream().mapToLong(Long::longValue).toArray();
    }

    private long integer() throws FormatException {
      int start = at;
      if (peek() == '-') {
        at++;
      }
      int digits = at;
      while (at < s.length() && Character.isDigit(s.charAt(at)) && s.charAt(at) < 128) {
        at++;
      }
      if (at == digits) {
        throw error("expected an integer");
      }
      String number = s.substring(start, at);
      if (peek() == 'L') {
        at++; // Python 2 long literal, written by old NumPy versions.
      }
      try {
        return Long.parseLong(number);
      } catch (NumberFormatException e) {
        throw new FormatException(
            array + ": shape dimension " + NdArrays.abbreviate(number) + " is too large");
      }
    }

    private String string() throws FormatException {
      char quote = peek();
      if (quote != '\'' && quote != '"') {
        throw error("expected a quoted string");
      }
      int start = ++at;
      while (at < s.length() && s.charAt(at) != quote) {
        if (s.charAt(at) == '\\') {
          throw error("escape sequences are not supported");
        }
        at++;
      }
      if (at == s.length()) {
        throw error("unterminated string");
      }
      return s.substring(start, at++);
    }

    private void expect(char c) throws FormatException {
      if (peek() != c) {
        throw error("expected '" + c + "'");
      }
      at++;
    }

    /** The next character, or NUL at the end. */
    private char peek() {
      return at < s.length() ? s.charAt(at) : '\0';
    }

    private void skipSpace() {
      while (at < s.length()
          && (s.charAt(at) == ' '
              || s.charAt(at) == '\n'
              || s.charAt(at) == '\t'
              || s.charAt(at) == '\r')) {
        at++;
      }
    }

    private FormatException error(String problem) {
      return new FormatException(
          array + ": malformed npy header at character " + at + ": " + problem);
    }
  }
}
