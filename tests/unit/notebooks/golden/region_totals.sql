-- Databricks notebook source
-- MAGIC %md
-- MAGIC ## Region totals

-- COMMAND ----------

SELECT region, sum(amount) AS total
FROM bronze.sales
GROUP BY region

-- COMMAND ----------

-- DBTITLE 1,Check in Python
-- MAGIC %python
-- MAGIC print(spark.table("bronze.sales").count())

-- COMMAND ----------

-- MAGIC %md-sandbox
-- MAGIC <b>kept as text</b>
