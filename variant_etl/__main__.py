from variant_etl.cli import main

raise SystemExit(main())
