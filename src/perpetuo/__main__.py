from perpetuo.cli import main

main()
