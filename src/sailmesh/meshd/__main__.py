from sailmesh.meshd.daemon import main

main()
