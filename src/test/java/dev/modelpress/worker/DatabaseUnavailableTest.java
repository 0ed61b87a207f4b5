package dev.modelpress.worker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.modelpress.compression.CompressionException;
import java.sql.SQLException;
import org.junit.jupiter.api.Test;
import org.postgresql.util.PSQLException;
import org.postgresql.util.PSQLState;
import org.springframework.dao.DataAccessResourceFailureException;
import org.springframework.dao.DataIntegrityViolationException;
import org.springframework.transaction.CannotCreateTransactionException;

/**
 * Which failures hand a job back to the queue instead of failing it: the ones that say the
 * database connection went away (PostgresRestartDrillTest shows the whole path).
 */
class DatabaseUnavailableTest {

  @Test
  void connectionFailuresAnywhereInTheCauseChainCountAsTheDatabaseBeingAway() {
    PSQLException io = new PSQLException("An I/O error occurred while sending to the backend.",
        PSQLState.CONNECTION_FAILURE);
    assertThat(JobRunner.databaseUnavailable(io)).isTrue();
    assertThat(JobRunner.databaseUnavailable(new DataAccessResourceFailureException("pool", io))).isTrue();
    assertThat(JobRunner.databaseUnavailable(new CannotCreateTransactionException("no connection"))).isTrue();
    // 57P01: terminating connection due to administrator command (the server shutting down).
    assertThat(JobRunner.databaseUnavailable(new RuntimeException(new SQLException("terminating", "57P01")))).isTrue();
  }

  @Test
  void constraintViolationsAndJobErrorsAreNot() {
    assertThat(JobRunner.databaseUnavailable(new DataIntegrityViolationException("dup",
        new SQLException("duplicate key", "23505")))).isFalse();
    assertThat(JobRunner.databaseUnavailable(new CompressionException("NaN weights"))).isFalse();
    assertThat(JobRunner.databaseUnavailable(new IllegalStateException("bug"))).isFalse();
  }
}
