package dev.modelpress.system;

import jakarta.servlet.http.HttpServletRequest;
import java.io.IOException;
import java.io.InputStream;
import org.springframework.web.multipart.MultipartFile;

/** Reading upload bodies, raw or multipart, within the configured limit. */
public final class Uploads {

  private Uploads() {}

  /** Spools a raw request body, refusing a declared Content-Length over the limit before reading. */
  public static UploadSpool.Spooled spoolRaw(UploadSpool spool, HttpServletRequest request) throws IOException {
    long declared = request.getContentLengthLong();
    if (declared > spool.maxBytes()) {
      throw spool.tooLarge();
    }
    if (declared == 0) {
      throw new ApiProblem(ApiProblem.Kind.MALFORMED_REQUEST, "the request body is empty");
    }
    try (InputStream in = request.getInputStream()) {
      return spool.spool(in);
    }
  }

  /** Spools a multipart file part. */
  public static UploadSpool.Spooled spoolPart(UploadSpool spool, MultipartFile file) throws IOException {
    if (file.getSize() > spool.maxBytes()) {
      throw spool.tooLarge();
    }
    try (InputStream in = file.getInputStream()) {
      return spool.spool(in);
    }
  }

  /** The display name: the explicit one, else the file name, else the fallback. */
  public static String displayName(String explicit, String fileName, String fallback) {
    String name = explicit != null && !explicit.isBlank() ? explicit : fileName;
    if (name == null || name.isBlank()) {
      return fallback;
    }
    name = name.strip();
    return name.length() > 200 ? name.substring(0, 200) : name;
  }
}
