"""Reading text out of attachments for the input guardrails: PDF (PDFium), DOCX (its XML),
text files, and images and scanned PDF pages by OCR (Tesseract).

Everything here is synchronous and meant to run off the event loop (the pipeline's
`file_guardrails` runs it in a thread pool); the heavy libraries load on first use.
"""
