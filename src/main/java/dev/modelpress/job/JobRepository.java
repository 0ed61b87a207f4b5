package dev.modelpress.job;

import java.util.Optional;
import java.util.UUID;
import org.springframework.data.domain.Page;
import org.springframework.data.domain.Pageable;
import org.springframework.data.jpa.repository.JpaRepository;
import org.springframework.data.jpa.repository.Query;
import org.springframework.data.repository.query.Param;

/** Reads of jobs for the API, scoped to their owner. */
interface JobRepository extends JpaRepository<JobEntity, UUID> {

  Optional<JobEntity> findByIdAndOwner(UUID id, String owner);

  Optional<JobEntity> findByOwnerAndIdempotencyKey(String owner, String idempotencyKey);

  @Query("""
      select j from JobEntity j
      where j.owner = :owner and (:state is null or j.state = :state) and (:modelId is null or j.modelId = :modelId)
      order by j.createdAt desc""")
  Page<JobEntity> search(@Param("owner") String owner, @Param("state") JobState state,
      @Param("modelId") UUID modelId, Pageable pageable);
}
