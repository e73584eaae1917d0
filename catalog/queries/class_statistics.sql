-- Class-level statistics per course: students, mean, median and spread of weighted grades.
-- Trino SQL (Athena); approx_percentile is added to the local engine (src/query/trino.rs).
SELECT course_id,
       count(*) AS students,
       avg(weighted_grade) AS mean_grade,
       approx_percentile(weighted_grade, 0.5) AS median_grade,
       stddev(weighted_grade) AS stddev_grade,
       avg(completion_rate) AS mean_completion
FROM curated.student_course_performance
GROUP BY course_id
ORDER BY course_id
