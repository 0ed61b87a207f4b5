package dev.modelpress.system;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ReadListener;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletInputStream;
import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.WriteListener;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletRequestWrapper;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpServletResponseWrapper;
import java.io.IOException;
import java.util.regex.Pattern;
import org.springframework.stereotype.Component;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * Counts the bytes that cross the API: {@code modelpress.transfer.in{kind=model|dataset}} for uploads
 * and {@code modelpress.transfer.out{kind=artifact}} for artifact downloads, as they stream (a
 * rejected or aborted upload still counts what was received). Raw uploads are counted as the
 * controller reads them; multipart uploads, parsed by the server before any filter can see the
 * stream, count their declared {@code Content-Length} (including part headers).
 */
@Component
class TransferMetricsFilter extends OncePerRequestFilter {

  private static final Pattern ARTIFACT = Pattern.compile("/v1/jobs/[^/]+/artifacts/[^/]+");

  private final Counter modelsIn;
  private final Counter datasetsIn;
  private final Counter artifactsOut;

  TransferMetricsFilter(MeterRegistry meters) {
    modelsIn = counter(meters, "modelpress.transfer.in", "model", "Bytes of model uploads received");
    datasetsIn = counter(meters, "modelpress.transfer.in", "dataset", "Bytes of dataset uploads received");
    artifactsOut = counter(meters, "modelpress.transfer.out", "artifact", "Bytes of job artifacts sent");
  }

  private static Counter counter(MeterRegistry meters, String name, String kind, String description) {
    return Counter.builder(name).baseUnit("bytes").tag("kind", kind).description(description).register(meters);
  }

  @Override
  protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws ServletException, IOException {
    String path = request.getRequestURI();
    String method = request.getMethod();
    if ("POST".equals(method) && (path.equals("/v1/models") || path.equals("/v1/datasets"))) {
      Counter in = path.equals("/v1/models") ? modelsIn : datasetsIn;
      String type = request.getContentType();
      if (type != null && type.toLowerCase(java.util.Locale.ROOT).startsWith("multipart/")) {
        if (request.getContentLengthLong() > 0) {
          in.increment(request.getContentLengthLong());
        }
        chain.doFilter(request, response);
      } else {
        chain.doFilter(new CountingRequest(request, in), response);
      }
    } else if ("GET".equals(method) && ARTIFACT.matcher(path).matches()) {
      chain.doFilter(request, new CountingResponse(response, artifactsOut));
    } else {
      chain.doFilter(request, response);
    }
  }

  private static final class CountingRequest extends HttpServletRequestWrapper {
    private final Counter counter;
    private ServletInputStream stream;

    CountingRequest(HttpServletRequest request, Counter counter) {
      super(request);
      this.counter = counter;
    }

    @Override
    public ServletInputStream getInputStream() throws IOException {
      if (stream == null) {
        ServletInputStream in = super.getInputStream();
        stream = new ServletInputStream() {
          @Override
          public int read() throws IOException {
            int b = in.read();
            if (b >= 0) {
              counter.increment();
            }
            return b;
          }

          @Override
          public int read(byte[] buf, int off, int len) throws IOException {
            int n = in.read(buf, off, len);
            if (n > 0) {
              counter.increment(n);
            }
            return n;
          }

          @Override
          public boolean isFinished() {
            return in.isFinished();
          }

          @Override
          public boolean isReady() {
            return in.isReady();
          }

          @Override
          public void setReadListener(ReadListener listener) {
            in.setReadListener(listener);
          }
        };
      }
      return stream;
    }
  }

  private static final class CountingResponse extends HttpServletResponseWrapper {
    private final Counter counter;
    private ServletOutputStream stream;

    CountingResponse(HttpServletResponse response, Counter counter) {
      super(response);
      this.counter = counter;
    }

    @Override
    public ServletOutputStream getOutputStream() throws IOException {
      if (stream == null) {
        ServletOutputStream out = super.getOutputStream();
        stream = new ServletOutputStream() {
          @Override
          public void write(int b) throws IOException {
            out.write(b);
            counter.increment();
          }

          @Override
          public void write(byte[] buf, int off, int len) throws IOException {
            out.write(buf, off, len);
            counter.increment(len);
          }

          @Override
          public void flush() throws IOException {
            out.flush();
          }

          @Override
          public void close() throws IOException {
            out.close();
          }

          @Override
          public boolean isReady() {
            return out.isReady();
          }

          @Override
          public void setWriteListener(WriteListener listener) {
            out.setWriteListener(listener);
          }
        };
      }
      return stream;
    }
  }
}
