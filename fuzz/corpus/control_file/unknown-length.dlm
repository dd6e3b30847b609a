{"version":1,"identity":{"source":"ftp://ftp.example.org/pub/file.bin","len":null,"validator":null},"done":[{"start":0,"end":65536}],"durable":[],"boot_id":null,"connections":1,"saved_unix_ms":0}
