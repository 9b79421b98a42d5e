# Databricks notebook source
# MAGIC %md
# MAGIC # Sales report
# MAGIC Totals per region, for one **day**.

# COMMAND ----------

# DBTITLE 1,Parameters
dbutils.widgets.text("day", "2026-01-01")
day = dbutils.widgets.get("day")

# COMMAND ----------

df = spark.sql(f"SELECT region, amount FROM bronze.sales WHERE day = '{day}'")
display(df.groupBy("region").agg({"amount": "sum"}))

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT count(*) AS n
# MAGIC
# MAGIC FROM bronze.sales

# COMMAND ----------

# MAGIC %md Inline title on the magic line
# MAGIC and a second line

# COMMAND ----------

# MAGIC %run ./helpers

# COMMAND ----------

# DBTITLE 0,Hidden title
# MAGIC %fs ls /Volumes/main/default/landing

# COMMAND ----------



# COMMAND ----------

dbutils.notebook.exit(str(df.count()))
